"""Judges by name: one spec string per judge, as the command line takes them.

Forms (``JUDGE_SPEC_FORMS``):

- ``offline``: the shipped n-gram classifier (:class:`~emscope.judge.offline.OfflineJudge`);
- ``exact-local:<model ref>``: a local causal LM scored exactly over 0..100
  (:class:`~emscope.judge.exact_local.ExactLocalJudge`; any ``emscope models`` reference);
- ``logprob:<model>[@<base_url>]``: Betley's canonical top-20 logprob judge over an
  OpenAI-compatible API (OpenAI itself when ``@<base_url>`` is left out);
- ``tagged:<model>[@<base_url>]``: the domain paper's ``<score>N</score>`` judge, same transport.

Parsing (:func:`parse_judge_spec`) is pure; :func:`make_judge_from_spec` builds the judge and,
given a :class:`~emscope.judge.cache.JudgeCache`, wraps it in a
:class:`~emscope.judge.cache.CachedJudge`. Adding a judge kind is one ``_BUILDERS`` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, cast
from urllib.parse import urlsplit

from emscope.errors import InputError
from emscope.judge.base import Judge
from emscope.judge.cache import CachedJudge, JudgeCache

JudgeKind = Literal["offline", "exact-local", "logprob", "tagged"]
JUDGE_SPEC_FORMS = (
    "offline",
    "exact-local:<model ref>",
    "logprob:<model>[@<base_url>]",
    "tagged:<model>[@<base_url>]",
)


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec: the kind, the model (or model ref) and an optional API base URL."""

    kind: JudgeKind
    model: str | None = None
    base_url: str | None = None


def _spec_error(spec: str, problem: str) -> InputError:
    forms = ", ".join(JUDGE_SPEC_FORMS)
    return InputError(f"{problem} in judge spec {spec!r}; use one of: {forms}", field="judge")


def parse_judge_spec(spec: str) -> JudgeSpec:
    """Parse ``spec``; an InputError names the problem and lists the accepted forms.

    >>> parse_judge_spec("logprob:gpt-4o-2024-08-06@http://127.0.0.1:8000/v1")
    JudgeSpec(kind='logprob', model='gpt-4o-2024-08-06', base_url='http://127.0.0.1:8000/v1')
    """
    text = spec.strip()
    kind, colon, rest = text.partition(":")
    rest = rest.strip()
    if kind == "offline":
        if colon:
            raise _spec_error(spec, "'offline' takes no argument")
        return JudgeSpec("offline")
    if kind not in ("exact-local", "logprob", "tagged"):
        raise _spec_error(spec, f"unknown judge kind {kind!r}")
    if not rest:
        raise _spec_error(spec, f"{kind!r} needs a model after the colon")
    if kind == "exact-local":
        return JudgeSpec("exact-local", rest)
    model, at, base_url = rest.partition("@")
    model, base_url = model.strip(), base_url.strip()
    if not model:
        raise _spec_error(spec, "empty model name")
    if at:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _spec_error(spec, f"base URL {base_url!r} is not an http(s) URL")
    return JudgeSpec(cast(JudgeKind, kind), model, base_url or None)


def _offline(spec: JudgeSpec) -> Judge:
    from emscope.judge.offline import OfflineJudge

    return OfflineJudge()


def _exact_local(spec: JudgeSpec) -> Judge:
    from emscope.judge.exact_local import ExactLocalJudge
    from emscope.models.refs import parse_model_ref

    return ExactLocalJudge(parse_model_ref(str(spec.model)))


def _logprob(spec: JudgeSpec) -> Judge:
    from emscope.judge.api import LogprobApiJudge
    from emscope.sample.openai_compat import ApiEndpoint

    return LogprobApiJudge(ApiEndpoint(model=str(spec.model), base_url=spec.base_url))


def _tagged(spec: JudgeSpec) -> Judge:
    from emscope.judge.api import TaggedApiJudge
    from emscope.sample.openai_compat import ApiEndpoint

    return TaggedApiJudge(ApiEndpoint(model=str(spec.model), base_url=spec.base_url))


_BUILDERS: dict[JudgeKind, Callable[[JudgeSpec], Judge]] = {
    "offline": _offline,
    "exact-local": _exact_local,
    "logprob": _logprob,
    "tagged": _tagged,
}


def make_judge_from_spec(spec: str, *, cache: JudgeCache | None = None) -> Judge:
    """The judge ``spec`` names; wrapped in a :class:`CachedJudge` over ``cache`` when given.

    API judges only need a key when they send requests, so building one never touches the
    network; the exact-local judge loads its model on first use.
    """
    parsed = parse_judge_spec(spec)
    judge = _BUILDERS[parsed.kind](parsed)
    if cache is None:
        return judge
    request_params = getattr(judge, "request_params", None)
    params = request_params() if callable(request_params) else None
    return CachedJudge(judge, cache, params=params)


def judge_mode(judge: Judge) -> str:
    """The scoring mode of a judge, looking through a cache wrapper ('' when it has none)."""
    inner = judge.inner if isinstance(judge, CachedJudge) else judge
    return str(getattr(inner, "mode", "") or "")
