"""Samplers by engine name: one table, from which the accepted forms and help text come.

Engines (``ENGINES``): ``transformers`` (in-process, :class:`~emscope.sample.local.LocalSampler`),
``vllm`` (offline engine, GPU only, import-guarded), ``http:<base_url>`` (any OpenAI-compatible
server: llama.cpp, vLLM serve, SGLang), ``openai`` (the OpenAI API: base and fine-tuned models)
and ``scripted`` (a deterministic in-memory sampler, no model). Every caller asks
:func:`make_sampler`; adding a backend is one module and one line in ``ENGINES``.

>>> parse_engine("http:http://127.0.0.1:8080/v1")
EngineSpec(name='http', argument='http://127.0.0.1:8080/v1')
>>> default_engine(parse_model_ref("openai/gpt-4o-mini"))
'openai'
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from emscope.errors import InputError
from emscope.models.refs import ModelRef, parse_model_ref
from emscope.sample.base import Sampler

if TYPE_CHECKING:
    from emscope.sample.adapters import AdapterRegistry
    from emscope.sample.many import MultiModelEngine

SharedBuild = Callable[["AdapterRegistry", int], "MultiModelEngine"]
# A shared vLLM engine gets at least this many requests at a time (vLLM schedules its own
# batches; each chunk's answers are stored as soon as it finishes).
VLLM_SUBMIT = 2048


@dataclass(frozen=True)
class EngineSpec:
    """A parsed engine name: ``http:<base_url>`` carries its URL as the argument."""

    name: str
    argument: str | None = None


@dataclass(frozen=True)
class Engine:
    """One row of the table: its spelling, what it serves, and the factory that builds it."""

    form: str
    help: str
    build: Callable[[EngineSpec, ModelRef, int], Sampler]
    needs_argument: bool = False
    local_models: bool = True  # serves local models (LoRA adapters included)
    api_models: bool = False  # serves openai/<model> references
    shared: SharedBuild | None = None  # one engine for a base model and all its adapters
    shared_by_default: bool = False  # a study family samples through ``shared`` unless told not


def _transformers(spec: EngineSpec, ref: ModelRef, batch_size: int) -> Sampler:
    from emscope.sample.local import LocalSampler

    return LocalSampler(ref, batch_size=batch_size)


def _vllm(spec: EngineSpec, ref: ModelRef, batch_size: int) -> Sampler:
    from emscope.sample.vllm_backend import VllmSampler

    base = ModelRef(kind=ref.kind, name=ref.name, provider=ref.provider)
    return VllmSampler(str(base), adapter=ref.adapter, batch_size=max(batch_size, 1))


def _transformers_shared(registry: AdapterRegistry, batch_size: int) -> MultiModelEngine:
    from emscope.sample.multi_adapter import MultiAdapterSampler

    return MultiAdapterSampler(registry, batch_size=batch_size)


def _vllm_shared(registry: AdapterRegistry, batch_size: int) -> MultiModelEngine:
    from emscope.sample.vllm_backend import VllmMultiEngine

    return VllmMultiEngine(registry, batch_size=max(batch_size, VLLM_SUBMIT))


def _http(spec: EngineSpec, ref: ModelRef, batch_size: int) -> Sampler:
    from emscope.sample.http import HttpSampler
    from emscope.sample.openai_compat import ApiEndpoint

    if ref.adapter is not None:
        raise InputError(
            f"the http engine samples what the server serves; it cannot load the adapter of "
            f"{ref} (serve the fine-tuned model and name it, or use engine transformers/vllm)",
            field="engine",
        )
    return HttpSampler(ApiEndpoint(model=ref.name, base_url=spec.argument), batch_size=batch_size)


def _openai(spec: EngineSpec, ref: ModelRef, batch_size: int) -> Sampler:
    from emscope.sample.http import HttpSampler
    from emscope.sample.openai_compat import ApiEndpoint

    if ref.kind != "api":
        raise InputError(f"the openai engine serves openai/<model> only, not {ref}", field="engine")
    return HttpSampler(ApiEndpoint(model=ref.name), batch_size=batch_size)


def _scripted(spec: EngineSpec, ref: ModelRef, batch_size: int) -> Sampler:
    from emscope.sample.scripted import ScriptedSampler

    return ScriptedSampler(ref, batch_size=batch_size)


ENGINES: dict[str, Engine] = {
    "transformers": Engine(
        "transformers",
        "in-process transformers (CPU/GPU)",
        _transformers,
        shared=_transformers_shared,
    ),
    "vllm": Engine(
        "vllm",
        "vLLM offline engine, multi-LoRA (CUDA; pip install vllm)",
        _vllm,
        shared=_vllm_shared,
        shared_by_default=True,
    ),
    "http": Engine(
        "http:<base_url>",
        "an OpenAI-compatible server (llama.cpp, vLLM serve); samples the served model",
        _http,
        needs_argument=True,
        api_models=True,
    ),
    "openai": Engine(
        "openai", "the OpenAI API (base and fine-tuned models)", _openai, False, False, True
    ),
    "scripted": Engine(
        "scripted",
        "deterministic in-memory answers, no model (tests, dry rehearsals)",
        _scripted,
        api_models=True,
    ),
}


def engine_help() -> str:
    """One line per engine, for field descriptions and error messages."""
    return "; ".join(f"{e.form}: {e.help}" for e in ENGINES.values())


def parse_engine(text: str) -> EngineSpec:
    """Parse an engine name; an InputError lists the accepted forms."""
    name, colon, argument = text.strip().partition(":")
    engine = ENGINES.get(name)
    forms = ", ".join(e.form for e in ENGINES.values())
    if engine is None:
        raise InputError(f"unknown engine {text!r}; use one of: {forms}", field="engine")
    if engine.needs_argument != bool(colon and argument):
        need = "needs an argument" if engine.needs_argument else "takes no argument"
        raise InputError(f"engine {name!r} {need} ({engine.form})", field="engine")
    if name == "http":
        parts = urlsplit(argument)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise InputError(f"engine base URL {argument!r} is not an http(s) URL", field="engine")
    return EngineSpec(name, argument or None)


def default_engine(ref: ModelRef) -> str:
    """``openai`` for OpenAI models, ``transformers`` for everything local."""
    return "openai" if ref.kind == "api" else "transformers"


def check_engine_serves(engine: str, ref: ModelRef) -> None:
    """An InputError when ``engine`` cannot sample ``ref`` (a local engine and an API model)."""
    spec = ENGINES[parse_engine(engine).name]
    if ref.kind == "api" and not spec.api_models:
        raise InputError(f"engine {engine!r} cannot sample the API model {ref}", field="engine")
    if ref.kind != "api" and not spec.local_models:
        raise InputError(f"engine {engine!r} serves API models only, not {ref}", field="engine")


def make_sampler(engine: str, model: ModelRef | str, *, batch_size: int = 32) -> Sampler:
    """The sampler ``engine`` names, for ``model`` (a reference or its spelling)."""
    ref = parse_model_ref(model) if isinstance(model, str) else model
    spec = parse_engine(engine)
    check_engine_serves(engine, ref)
    return ENGINES[spec.name].build(spec, ref, batch_size)


def make_shared_engine(
    engine: str, registry: AdapterRegistry, *, batch_size: int = 32
) -> MultiModelEngine:
    """One engine of kind ``engine`` holding ``registry``'s base model and every adapter."""
    row = ENGINES[parse_engine(engine).name]
    if row.shared is None:
        raise InputError(f"engine {engine!r} cannot hold several models", field="engine")
    return row.shared(registry, batch_size)
