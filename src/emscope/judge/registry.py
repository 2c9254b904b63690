"""Judges by name: one spec string per judge, as the command line takes them.

Forms (``JUDGE_SPEC_FORMS``):

- ``offline``: the shipped MiniLM classifier (:class:`~emscope.judge.offline.OfflineJudge`);
- ``exact-local:<model ref>``: a local causal LM scored exactly over 0..100
  (:class:`~emscope.judge.exact_local.ExactLocalJudge`; any ``emscope models`` reference);
- ``logprob:<model>[@<base_url>]``: Betley's canonical top-20 logprob judge over an
  OpenAI-compatible API (OpenAI itself when ``@<base_url>`` is left out);
- ``tagged:<model>[@<base_url>]``: the domain paper's ``<score>N</score>`` judge, same transport;
- ``exact-http:<model>@<base_url>,tokenizer=<model ref>,server=vllm|llama-cpp``: the exact
  0..100 judge over a server returning prompt logprobs
  (:class:`~emscope.judge.exact_http.ExactHttpJudge`);
- ``reasoning:<model>[@<base_url>][,effort=low][,k=1][,max_completion_tokens=4096]``: a model
  that reasons before answering, scored from its final answer
  (:class:`~emscope.judge.reasoning_api.ReasoningApiJudge`).

Options follow the model as ``,key=value`` pairs (only the kinds above that list them take any).

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

JudgeKind = Literal["offline", "exact-local", "logprob", "tagged", "exact-http", "reasoning"]
JUDGE_SPEC_FORMS = (
    "offline",
    "exact-local:<model ref>",
    "logprob:<model>[@<base_url>]",
    "tagged:<model>[@<base_url>]",
    "exact-http:<model>@<base_url>,tokenizer=<model ref>,server=vllm|llama-cpp",
    "reasoning:<model>[@<base_url>][,effort=low][,k=1][,max_completion_tokens=4096]",
)
SPEC_OPTIONS: dict[str, frozenset[str]] = {
    "exact-http": frozenset({"tokenizer", "server"}),
    "reasoning": frozenset({"effort", "k", "max_completion_tokens"}),
}


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec: the kind, the model (or model ref) and an optional API base URL."""

    kind: JudgeKind
    model: str | None = None
    base_url: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)


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
    if kind not in ("exact-local", "logprob", "tagged", "exact-http", "reasoning"):
        raise _spec_error(spec, f"unknown judge kind {kind!r}")
    if not rest:
        raise _spec_error(spec, f"{kind!r} needs a model after the colon")
    if kind == "exact-local":
        return JudgeSpec("exact-local", rest)
    options: tuple[tuple[str, str], ...] = ()
    if kind in SPEC_OPTIONS:
        rest, options = _split_options(spec, kind, rest)
    if kind == "exact-http" and (
        "@" not in rest or not {"tokenizer", "server"} <= dict(options).keys()
    ):
        raise _spec_error(spec, "'exact-http' needs @<base_url>, tokenizer= and server=")
    model, at, base_url = rest.partition("@")
    model, base_url = model.strip(), base_url.strip()
    if not model:
        raise _spec_error(spec, "empty model name")
    if at:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise _spec_error(spec, f"base URL {base_url!r} is not an http(s) URL")
    return JudgeSpec(cast(JudgeKind, kind), model, base_url or None, options)


def _split_options(spec: str, kind: str, rest: str) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``model@url,key=value,...`` into ``model@url`` and the checked ``(key, value)`` pairs."""
    head, *pairs = rest.split(",")
    options = []
    for pair in pairs:
        key, eq, value = (p.strip() for p in pair.partition("="))
        if not eq or not value or key not in SPEC_OPTIONS[kind]:
            allowed = ", ".join(sorted(SPEC_OPTIONS[kind]))
            raise _spec_error(spec, f"option {pair!r} is not one of {allowed} as key=value")
        options.append((key, value))
    return head.strip(), tuple(options)


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


def _exact_http(spec: JudgeSpec) -> Judge:
    from emscope.judge.exact_http import ExactHttpJudge, ServerKind
    from emscope.models.refs import parse_model_ref
    from emscope.sample.openai_compat import ApiEndpoint

    endpoint = ApiEndpoint(model=str(spec.model), base_url=spec.base_url)
    tokenizer = parse_model_ref(str(spec.option("tokenizer")))
    return ExactHttpJudge(endpoint, tokenizer, cast(ServerKind, spec.option("server")))


def _reasoning(spec: JudgeSpec) -> Judge:
    from emscope.judge.reasoning import Effort
    from emscope.judge.reasoning_api import (
        DEFAULT_EFFORT,
        DEFAULT_MAX_COMPLETION_TOKENS,
        ReasoningApiJudge,
    )
    from emscope.sample.openai_compat import ApiEndpoint

    numbers = {}
    for name, default in (("k", 1), ("max_completion_tokens", DEFAULT_MAX_COMPLETION_TOKENS)):
        text = str(spec.option(name, str(default)))
        if not text.isdigit():
            raise InputError(f"{name}={text!r} is not a whole number", field="judge")
        numbers[name] = int(text)
    return ReasoningApiJudge(
        ApiEndpoint(model=str(spec.model), base_url=spec.base_url),
        effort=cast(Effort, spec.option("effort", DEFAULT_EFFORT)),
        **numbers,
    )


_BUILDERS: dict[JudgeKind, Callable[[JudgeSpec], Judge]] = {
    "offline": _offline,
    "exact-local": _exact_local,
    "logprob": _logprob,
    "tagged": _tagged,
    "exact-http": _exact_http,
    "reasoning": _reasoning,
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
