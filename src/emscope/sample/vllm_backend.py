"""vLLM's offline engine as a generation backend, for GPU users (optional, import-guarded).

vLLM is CUDA-only and not a dependency of emscope: ``pip install vllm`` on a GPU machine. One
engine serves the base model and every LoRA adapter of a study (multi-LoRA), so a whole study's
models sample without reloading weights::

    sampler = VllmSampler("Qwen/Qwen2.5-Coder-7B-Instruct", adapter="runs/x/models/a/adapter")
    sampler.generate([ChatPrompt(user="Hi")], SamplingParams(max_new_tokens=64), seeds=[0])

Every sampling parameter is pinned in vLLM's own ``SamplingParams`` (top_k -1 = off, min_p 0,
repetition penalty as given) and each prompt carries its own seed, so results do not depend on
the batch layout.

For a whole study, :class:`VllmMultiEngine` holds the base model and every adapter in one
engine and samples all models' prompts together (see :mod:`emscope.sample.many`).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emscope.errors import EmscopeError
from emscope.manifest import sha256_text
from emscope.models.loading import resolve_local_path
from emscope.sample.adapters import AdapterRegistry
from emscope.sample.base import ChatPrompt, FinishReason, Generation, SamplingParams


def vllm_available() -> bool:
    return importlib.util.find_spec("vllm") is not None


def require_vllm() -> Any:
    """Import vLLM or say how to get it; never fall back to another backend silently."""
    if not vllm_available():
        raise EmscopeError(
            "the vLLM backend needs vLLM, which runs on CUDA GPUs only: pip install vllm "
            "(on a CPU machine use the local transformers backend instead)"
        )
    import vllm

    return vllm


def vllm_sampling_params(params: SamplingParams, seed: int) -> dict[str, Any]:
    """The keyword arguments of ``vllm.SamplingParams`` that pin every emscope parameter."""
    return {
        "n": 1,
        "temperature": params.temperature,
        "top_p": params.top_p,
        "top_k": params.top_k if params.top_k > 0 else -1,
        "min_p": 0.0,
        "repetition_penalty": params.repetition_penalty,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "max_tokens": params.max_new_tokens,
        "seed": seed,
    }


class VllmSampler:
    """A :class:`~emscope.sample.base.Sampler` over one vLLM engine, optionally with a LoRA."""

    def __init__(
        self,
        model: str,
        *,
        adapter: str | Path | None = None,
        max_lora_rank: int = 64,
        batch_size: int = 256,
        engine: Any = None,
    ) -> None:
        vllm = require_vllm()
        self.model_name = model
        self.adapter = Path(adapter) if adapter else None
        self._batch_size = batch_size
        self.engine = engine or vllm.LLM(
            model=model, enable_lora=self.adapter is not None, max_lora_rank=max_lora_rank
        )
        self._lora = None
        if self.adapter is not None:
            from vllm.lora.request import LoRARequest

            self._lora = LoRARequest(self.adapter.name, 1, str(self.adapter))

    @property
    def identity(self) -> str:
        return f"vllm:{self.model_name}" + (f"+{self.adapter}" if self.adapter else "")

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def info(self) -> dict[str, Any]:
        tokenizer = self.engine.get_tokenizer()
        return {
            "backend": "vllm",
            "model": self.model_name,
            "adapter": str(self.adapter) if self.adapter else None,
            "chat_template_sha256": sha256_text(tokenizer.chat_template or ""),
        }

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        if len(prompts) != len(seeds):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        vllm = require_vllm()
        sampling = [vllm.SamplingParams(**vllm_sampling_params(params, s)) for s in seeds]
        outputs = self.engine.chat(
            [p.messages() for p in prompts], sampling, lora_request=self._lora, use_tqdm=False
        )
        return [_generation(out) for out in outputs]


# vLLM pads every adapter slot to max_lora_rank, which must be one of these.
VLLM_LORA_RANKS = (1, 8, 16, 32, 64, 128, 256, 320, 512)


def vllm_lora_rank(rank: int) -> int:
    """The smallest rank vLLM accepts as ``max_lora_rank`` that holds a rank-``rank`` adapter."""
    for allowed in VLLM_LORA_RANKS:
        if allowed >= rank:
            return allowed
    raise EmscopeError(f"LoRA rank {rank} is above vLLM's largest max_lora_rank (512)")


def vllm_engine_kwargs(
    registry: AdapterRegistry, *, max_loras: int | None = None, **extra: Any
) -> dict[str, Any]:
    """``vllm.LLM`` arguments for one engine holding the base model and every adapter.

    ``max_loras`` (adapters batched together) defaults to all of them, so no request waits
    for an adapter slot; ``max_cpu_loras`` keeps all of them loaded; ``max_lora_rank`` is the
    real largest rank (rounded up to a rank vLLM supports), since every slot is padded to it.
    """
    model = resolve_local_path(registry.base)
    kwargs: dict[str, Any] = {"model": model, "tokenizer": model, "seed": 0}
    n = len(registry.adapters)
    if n:
        kwargs |= {
            "enable_lora": True,
            "max_loras": min(n, max_loras or n),
            "max_lora_rank": vllm_lora_rank(registry.max_rank()),
            "max_cpu_loras": n,
        }
    return kwargs | extra


def lora_request_class() -> Any:
    require_vllm()
    from vllm.lora.request import LoRARequest

    return LoRARequest


class VllmMultiEngine:
    """One vLLM engine for a study: the base model and every adapter of ``registry``.

    :meth:`generate_mixed` submits all prompts at once, each with its own seed
    (``SamplingParams(seed=...)``) and its model's ``LoRARequest``; vLLM schedules them
    together and the answers come back in prompt order. Prompts are rendered with the base
    model's chat template and tokenized here (no special tokens added twice), exactly as the
    transformers engine does. ``engine`` replaces ``vllm.LLM`` (tests pass a fake one).
    """

    def __init__(
        self,
        registry: AdapterRegistry,
        *,
        batch_size: int = 2048,
        max_loras: int | None = None,
        engine: Any = None,
        **engine_kwargs: Any,
    ) -> None:
        vllm = require_vllm()
        self.registry = registry
        self._batch_size = batch_size
        self.engine_kwargs = vllm_engine_kwargs(registry, max_loras=max_loras, **engine_kwargs)
        self.engine = engine if engine is not None else vllm.LLM(**self.engine_kwargs)
        request = lora_request_class()
        self.lora_requests = {
            name: request(name, index, str(path))
            for index, (name, path) in enumerate(registry.adapters.items(), start=1)
        }
        self.tokenizer = self.engine.get_tokenizer()
        self.chat_template = str(self.tokenizer.chat_template or "")
        self.stop_token_ids = self._stop_token_ids()

    def _stop_token_ids(self) -> list[int]:
        from emscope.sample.local import END_OF_TURN_TOKENS

        ids = (
            {int(self.tokenizer.eos_token_id)} if self.tokenizer.eos_token_id is not None else set()
        )
        added = self.tokenizer.get_added_vocab()
        ids.update(int(added[t]) for t in END_OF_TURN_TOKENS if t in added)
        return sorted(ids)

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def info(self) -> dict[str, Any]:
        return {
            "backend": "vllm-multi-lora",
            "model": str(self.registry.base),
            "adapters": {name: str(path) for name, path in self.registry.adapters.items()},
            "engine_kwargs": {k: v for k, v in self.engine_kwargs.items() if k != "model"},
            "chat_template_sha256": sha256_text(self.chat_template),
            "stop_token_ids": self.stop_token_ids,
            "per_row_seeds": True,
        }

    def render(self, prompt: ChatPrompt) -> list[int]:
        text = self.tokenizer.apply_chat_template(
            prompt.messages(), tokenize=False, add_generation_prompt=True
        )
        return list(self.tokenizer(str(text), add_special_tokens=False)["input_ids"])

    def build_requests(
        self,
        prompts: list[ChatPrompt],
        params: SamplingParams,
        seeds: list[int],
        models: Sequence[str | None],
    ) -> tuple[list[dict[str, Any]], list[Any], list[Any]]:
        """Token prompts, per-request sampling params and per-request LoRA (None = base)."""
        if not len(prompts) == len(seeds) == len(models):
            raise ValueError(f"{len(prompts)} prompts, {len(seeds)} seeds, {len(models)} models")
        unknown = {m for m in models if m is not None and m not in self.lora_requests}
        if unknown:
            raise ValueError(f"unknown adapters {sorted(unknown)}")
        vllm = require_vllm()
        token_prompts = [{"prompt_token_ids": self.render(p)} for p in prompts]
        sampling = [
            vllm.SamplingParams(
                **vllm_sampling_params(params, seed), stop_token_ids=self.stop_token_ids
            )
            for seed in seeds
        ]
        loras = [None if m is None else self.lora_requests[m] for m in models]
        return token_prompts, sampling, loras

    def generate_mixed(
        self,
        prompts: list[ChatPrompt],
        params: SamplingParams,
        seeds: list[int],
        models: Sequence[str | None],
    ) -> list[Generation]:
        token_prompts, sampling, loras = self.build_requests(prompts, params, seeds, models)
        outputs = self.engine.generate(token_prompts, sampling, lora_request=loras, use_tqdm=False)
        if len(outputs) != len(prompts):
            raise RuntimeError(f"vLLM returned {len(outputs)} outputs for {len(prompts)} prompts")
        for out, sent in zip(outputs, token_prompts, strict=True):
            if list(out.prompt_token_ids) != sent["prompt_token_ids"]:
                raise RuntimeError("vLLM returned its outputs out of prompt order")
        return [_generation(out) for out in outputs]

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        """The base model's answers."""
        return self.generate_mixed(prompts, params, seeds, [None] * len(prompts))


def _generation(out: Any) -> Generation:
    first = out.outputs[0]
    reason: FinishReason = "length" if first.finish_reason == "length" else "stop"
    return Generation(text=first.text, n_new_tokens=len(first.token_ids), finish_reason=reason)
