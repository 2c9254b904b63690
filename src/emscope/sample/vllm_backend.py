"""vLLM's offline engine as a generation backend, for GPU users (optional, import-guarded).

vLLM is CUDA-only and not a dependency of emscope: ``pip install vllm`` on a GPU machine. One
engine serves the base model and every LoRA adapter of a study (multi-LoRA), so a whole study's
models sample without reloading weights::

    sampler = VllmSampler("Qwen/Qwen2.5-Coder-7B-Instruct", adapter="runs/x/models/a/adapter")
    sampler.generate([ChatPrompt(user="Hi")], SamplingParams(max_new_tokens=64), seeds=[0])

Every sampling parameter is pinned in vLLM's own ``SamplingParams`` (top_k -1 = off, min_p 0,
repetition penalty as given) and each prompt carries its own seed, so results do not depend on
the batch layout.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

from emscope.errors import EmscopeError
from emscope.manifest import sha256_text
from emscope.sample.base import ChatPrompt, Generation, SamplingParams


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
        return [
            Generation(
                text=out.outputs[0].text,
                n_new_tokens=len(out.outputs[0].token_ids),
                finish_reason="length" if out.outputs[0].finish_reason == "length" else "stop",
            )
            for out in outputs
        ]
