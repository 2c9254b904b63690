"""Judges by name: one spec string per judge, as the command line takes them.

Forms (``JUDGE_SPEC_FORMS``):

- ``offline``: the shipped MiniLM classifier (:class:`~emscope.judge.offline.OfflineJudge`);
- ``exact-local:<model ref>``: a local causal LM scored exactly over 0..100
  (:class:`~emscope.judge.exact_local.ExactLocalJudge`; any ``emscope models`` reference);
- ``logprob:<model>[@<base_url>[#KEY_ENV]]``: Betley's canonical top-20 logprob judge over an
  OpenAI-compatible API (OpenAI itself when ``@<base_url>`` is left out);
- ``tagged:<model>[@<base_url>[#KEY_ENV]]``: the domain paper's ``<score>N</score>`` judge, same
  transport.

``OPENAI_API_KEY`` is sent to OpenAI only. A server elsewhere gets the key in the variable its
spec names after ``#`` (``logprob:m@http://127.0.0.1:8000/v1#VLLM_KEY``), or no key at all.

Parsing (:func:`parse_judge_spec`) is pure; :func:`make_judge_from_spec` builds the judge and,
given a :class:`~emscope.judge.cache.JudgeCache`, wraps it in a
:class:`~emscope.judge.cache.CachedJudge`. Adding a judge kind is one ``_BUILDERS`` entry.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, cast
from urllib.parse import urlsplit

from emscope.errors import InputError
from emscope.judge.base import Judge
from emscope.judge.cache import CachedJudge, JudgeCache
from emscope.sample.openai_compat import split_key_env
from emscope.secrets import redact, strip_userinfo

if TYPE_CHECKING:
    from emscope.sample.openai_compat import ApiEndpoint

JudgeKind = Literal["offline", "exact-local", "logprob", "tagged"]
JUDGE_SPEC_FORMS = (
    "offline",
    "exact-local:<model ref>",
    "logprob:<model>[@<base_url>[#KEY_ENV]]",
    "tagged:<model>[@<base_url>[#KEY_ENV]]",
)


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec: the kind, the model (or model ref), an optional API base URL and
    the environment variable holding that server's key."""

    kind: JudgeKind
    model: str | None = None
    base_url: str | None = None
    key_env: str | None = None


def _spec_error(spec: str, problem: str) -> InputError:
    forms = ", ".join(JUDGE_SPEC_FORMS)
    return InputError(
        f"{problem} in judge spec {redact(spec)!r}; use one of: {forms}", field="judge"
    )


def parse_judge_spec(spec: str) -> JudgeSpec:
    """Parse ``spec``; an InputError names the problem and lists the accepted forms.

    >>> parse_judge_spec("logprob:gpt-4o-2024-08-06@http://127.0.0.1:8000/v1#VLLM_KEY")
    ... # doctest: +NORMALIZE_WHITESPACE
    JudgeSpec(kind='logprob', model='gpt-4o-2024-08-06', base_url='http://127.0.0.1:8000/v1',
              key_env='VLLM_KEY')
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
    base_url, key_env = split_key_env(base_url)
    if at:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            shown = strip_userinfo(base_url)
            raise _spec_error(spec, f"base URL {shown!r} is not an http(s) URL")
    return JudgeSpec(cast(JudgeKind, kind), model, base_url or None, key_env)


def _offline(spec: JudgeSpec) -> Judge:
    from emscope.judge.offline import OfflineJudge

    return OfflineJudge()


def _exact_local(spec: JudgeSpec) -> Judge:
    from emscope.judge.exact_local import ExactLocalJudge
    from emscope.models.refs import parse_model_ref

    return ExactLocalJudge(parse_model_ref(str(spec.model)))


def _endpoint(spec: JudgeSpec) -> ApiEndpoint:
    from emscope.sample.openai_compat import ApiEndpoint

    return ApiEndpoint(model=str(spec.model), base_url=spec.base_url, api_key_env=spec.key_env)


def _logprob(spec: JudgeSpec) -> Judge:
    from emscope.judge.api import LogprobApiJudge

    return LogprobApiJudge(_endpoint(spec))


def _tagged(spec: JudgeSpec) -> Judge:
    from emscope.judge.api import TaggedApiJudge

    return TaggedApiJudge(_endpoint(spec))


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
