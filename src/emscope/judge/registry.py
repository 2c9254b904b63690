"""Judges by name: one spec string per judge, from ONE table (:data:`JUDGE_KINDS`).

Each :class:`JudgeKind` row holds the kind's name, what follows the colon (nothing, a model
reference, or an API model with an optional ``@<base_url>``), a one-line description and the
builder. ``JUDGE_SPEC_FORMS``, :func:`judge_spec_help` (the CLI and study-file help) and the
parser are generated from it. Adding a judge kind is one module plus one row here. A row may
list options, written after the model as ``,key=value`` pairs (e.g.
``reasoning:gpt-oss-20b@http://127.0.0.1:8000/v1,effort=low,k=5``); ``required`` ones must be
given.

``OPENAI_API_KEY`` is sent to OpenAI only. A server elsewhere gets the key in the variable its
spec names after ``#`` (``logprob:m@http://127.0.0.1:8000/v1#VLLM_KEY``), or no key at all.

Parsing (:func:`parse_judge_spec`) is pure; :func:`make_judge_from_spec` builds the judge and,
given a :class:`~emscope.judge.cache.JudgeCache`, wraps it in a
:class:`~emscope.judge.cache.CachedJudge`.
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

Argument = Literal["none", "model-ref", "api-model"]


@dataclass(frozen=True)
class JudgeSpec:
    """A parsed judge spec: the kind, the model (or model ref), an optional API base URL and
    the environment variable holding that server's key."""

    kind: str
    model: str | None = None
    base_url: str | None = None
    key_env: str | None = None
    options: tuple[tuple[str, str], ...] = ()

    def option(self, name: str, default: str | None = None) -> str | None:
        return dict(self.options).get(name, default)


@dataclass(frozen=True)
class JudgeOptions:
    """Settings a study or the CLI passes to every judge that takes them (None: its default).

    ``max_tokens``: the reply budget of judges that write text before their score (tagged).
    """

    max_tokens: int | None = None


Builder = Callable[[JudgeSpec, JudgeOptions], Judge]


@dataclass(frozen=True)
class JudgeKind:
    """One row of the judge table."""

    name: str
    argument: Argument
    description: str
    build: Builder
    options: tuple[str, ...] = ()
    required: tuple[str, ...] = ()
    needs_base_url: bool = False

    @property
    def form(self) -> str:
        base = {
            "none": self.name,
            "model-ref": f"{self.name}:<model ref>",
            "api-model": f"{self.name}:<model>"
            + ("@<base_url>[#KEY_ENV]" if self.needs_base_url else "[@<base_url>[#KEY_ENV]]"),
        }[self.argument]
        extra = "".join(f",{o}=..." if o in self.required else f"[,{o}=...]" for o in self.options)
        return base + extra

    @property
    def calls_an_api(self) -> bool:
        """Whether the judge's model is served by a provider (its shutdown date is checked)."""
        return self.argument == "api-model"


def _offline(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    from emscope.judge.offline import OfflineJudge

    return OfflineJudge()


def _scripted(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    from emscope.judge.scripted import ScriptedJudge

    return ScriptedJudge()


def _exact_local(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    from emscope.judge.exact_local import ExactLocalJudge
    from emscope.models.refs import parse_model_ref

    return ExactLocalJudge(parse_model_ref(str(spec.model)))


def _endpoint(spec: JudgeSpec) -> ApiEndpoint:
    from emscope.sample.openai_compat import ApiEndpoint

    return ApiEndpoint(model=str(spec.model), base_url=spec.base_url, api_key_env=spec.key_env)


def _logprob(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    from emscope.judge.api import LogprobApiJudge

    return LogprobApiJudge(_endpoint(spec))


def _tagged(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    from emscope.judge.api import TaggedApiJudge
    from emscope.judge.tagged import TAGGED_MAX_TOKENS

    return TaggedApiJudge(_endpoint(spec), max_tokens=options.max_tokens or TAGGED_MAX_TOKENS)


def _exact_http(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    from emscope.judge.exact_http import ExactHttpJudge, ServerKind
    from emscope.models.refs import parse_model_ref

    tokenizer = parse_model_ref(str(spec.option("tokenizer")))
    return ExactHttpJudge(_endpoint(spec), tokenizer, cast(ServerKind, spec.option("server")))


def _reasoning(spec: JudgeSpec, options: JudgeOptions) -> Judge:
    from emscope.judge.reasoning import Effort
    from emscope.judge.reasoning_api import (
        DEFAULT_EFFORT,
        DEFAULT_MAX_COMPLETION_TOKENS,
        ReasoningApiJudge,
    )

    budget = options.max_tokens or DEFAULT_MAX_COMPLETION_TOKENS
    numbers = {}
    for name, default in (("k", 1), ("max_completion_tokens", budget)):
        text = str(spec.option(name, str(default)))
        if not text.isdigit():
            raise InputError(f"{name}={text!r} is not a whole number", field="judge")
        numbers[name] = int(text)
    return ReasoningApiJudge(
        _endpoint(spec),
        effort=cast(Effort, spec.option("effort", DEFAULT_EFFORT)),
        **numbers,
    )


JUDGE_KINDS: tuple[JudgeKind, ...] = (
    JudgeKind("offline", "none", "the shipped n-gram classifier (CPU, no network)", _offline),
    JudgeKind("scripted", "none", "deterministic keyword rule, for tests (no model)", _scripted),
    JudgeKind("exact-local", "model-ref", "a local LM scored exactly over 0..100", _exact_local),
    JudgeKind(
        "logprob", "api-model", "Betley's top-20 logprob method over an OpenAI API", _logprob
    ),
    JudgeKind("tagged", "api-model", "the domain paper's <score>N</score> judge", _tagged),
    JudgeKind(
        "exact-http",
        "api-model",
        "exact 0..100 over a vLLM / llama-cpp-python server's prompt logprobs",
        _exact_http,
        options=("tokenizer", "server"),
        required=("tokenizer", "server"),
        needs_base_url=True,
    ),
    JudgeKind(
        "reasoning",
        "api-model",
        "a reasoning model's final answer; effort pinned, k samples",
        _reasoning,
        options=("effort", "k", "max_completion_tokens"),
    ),
)
_BY_NAME = {kind.name: kind for kind in JUDGE_KINDS}
JUDGE_SPEC_FORMS: tuple[str, ...] = tuple(kind.form for kind in JUDGE_KINDS)


def judge_spec_help() -> str:
    """One line listing every spec form, for option help and the study-file schema."""
    return " | ".join(JUDGE_SPEC_FORMS)


def judge_kind(spec: JudgeSpec) -> JudgeKind:
    return _BY_NAME[spec.kind]


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
              key_env='VLLM_KEY', options=())
    >>> spec = parse_judge_spec("reasoning:gpt-oss-20b@http://127.0.0.1:8000/v1,effort=low")
    >>> spec.kind, spec.model, spec.base_url, spec.option("effort")
    ('reasoning', 'gpt-oss-20b', 'http://127.0.0.1:8000/v1', 'low')
    """
    text = spec.strip()
    name, colon, rest = text.partition(":")
    rest = rest.strip()
    kind = _BY_NAME.get(name)
    if kind is None:
        raise _spec_error(spec, f"unknown judge kind {name!r}")
    if kind.argument == "none":
        if colon:
            raise _spec_error(spec, f"{name!r} takes no argument")
        return JudgeSpec(name)
    if not rest:
        raise _spec_error(spec, f"{name!r} needs a model after the colon")
    if kind.argument == "model-ref":
        return JudgeSpec(name, rest)
    rest, options = _split_options(spec, kind, rest)
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
    if kind.needs_base_url and not at:
        raise _spec_error(spec, f"{name!r} needs @<base_url>")
    return JudgeSpec(name, model, base_url or None, key_env, options)


def _split_options(
    spec: str, kind: JudgeKind, rest: str
) -> tuple[str, tuple[tuple[str, str], ...]]:
    """``model@url,key=value,...`` into ``model@url`` and the checked ``(key, value)`` pairs."""
    if not kind.options:
        return rest, ()
    head, *pairs = rest.split(",")
    options = []
    for pair in pairs:
        key, eq, value = (p.strip() for p in pair.partition("="))
        if not eq or not value or key not in kind.options:
            allowed = ", ".join(kind.options)
            raise _spec_error(spec, f"option {pair!r} is not one of {allowed} as key=value")
        options.append((key, value))
    missing = [o for o in kind.required if o not in dict(options)]
    if missing:
        raise _spec_error(spec, f"{kind.name!r} needs {', '.join(m + '=' for m in missing)}")
    return head.strip(), tuple(options)


def make_judge_from_spec(
    spec: str, *, cache: JudgeCache | None = None, options: JudgeOptions | None = None
) -> Judge:
    """The judge ``spec`` names; wrapped in a :class:`CachedJudge` over ``cache`` when given.

    API judges only need a key when they send requests, so building one never touches the
    network; the exact-local judge loads its model on first use.
    """
    parsed = parse_judge_spec(spec)
    judge = judge_kind(parsed).build(parsed, options or JudgeOptions())
    return judge if cache is None else CachedJudge(judge, cache)


def judge_mode(judge: Judge) -> str:
    """The scoring mode a judge declares in its fingerprint ('' when it has none)."""
    return str(judge.fingerprint().get("mode") or "")
