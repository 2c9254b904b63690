"""Several fine-tunes of one base in one transformers model: mixed-adapter batches.

The base weights are loaded once and every adapter under its registry name; each row of a
``generate`` call names its adapter (peft ``adapter_names=``, ``"__base__"`` for the base), so
a study's models share batches instead of loading and sampling one after another::

    registry = AdapterRegistry.from_refs([ref_a, ref_b])
    engine = MultiAdapterSampler(registry, batch_size=64)
    engine.generate_mixed(prompts, params, seeds, models=["a0", "a1", None])
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from emscope.models.loading import load_model_with_adapters
from emscope.sample.adapters import AdapterRegistry
from emscope.sample.base import ChatPrompt, Generation, SamplingParams
from emscope.sample.local import LocalSampler
from emscope.sample.stacked_lora import StackedLora

BASE_ADAPTER = "__base__"  # peft's name for "no adapter" in adapter_names


class MultiAdapterSampler(LocalSampler):
    """A :class:`LocalSampler` over the base model holding every adapter of ``registry``.

    :meth:`generate` samples the base model; :meth:`generate_mixed` lets every row pick its
    model. Answers are per-row seeded (as in :class:`LocalSampler`), so a row's answer does not
    depend on which models share its batch. ``mixed="stacked"`` (default) applies every row's
    adapter with two matmuls per layer (:mod:`emscope.sample.stacked_lora`); ``"peft"`` uses
    peft's ``adapter_names=``, whose cost grows with the adapters in a batch.
    """

    def __init__(
        self,
        registry: AdapterRegistry,
        *,
        dtype: str | torch.dtype = "auto",
        batch_size: int = 32,
        device: str | torch.device | None = None,
        static_cache: bool = False,
        mixed: Literal["stacked", "peft"] = "stacked",
    ) -> None:
        self.registry = registry
        self.mixed = mixed
        super().__init__(
            registry.base,
            dtype=dtype,
            batch_size=batch_size,
            device=device,
            merge_adapter=False,
            per_row_seeds=True,
            static_cache=static_cache,
        )

    def _load_model(self) -> Any:
        model = load_model_with_adapters(
            self.registry.base, self.registry.adapters, dtype=self.dtype, device=self.device
        )
        if self.mixed == "stacked":
            self.stacked: StackedLora = StackedLora(model, list(self.registry.adapters))
        return model

    @property
    def identity(self) -> str:
        return f"{self.registry.base}+{len(self.registry.adapters)} adapters"

    def info(self) -> dict[str, Any]:
        return {
            **super().info(),
            "backend": "transformers-multi-adapter",
            "adapter": f"unmerged, mixed batches ({self.mixed})",
            "adapters": {name: str(path) for name, path in self.registry.adapters.items()},
        }

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        """The base model's answers (every row on ``__base__``)."""
        return self.generate_mixed(prompts, params, seeds, [None] * len(prompts))

    def generate_mixed(
        self,
        prompts: list[ChatPrompt],
        params: SamplingParams,
        seeds: list[int],
        models: Sequence[str | None],
        *,
        mixed: Literal["stacked", "peft"] | None = None,
    ) -> list[Generation]:
        """One answer per prompt, row ``i`` from adapter ``models[i]`` (None: the base);
        ``mixed`` overrides the engine's way of applying the adapters for this call."""
        if not len(prompts) == len(seeds) == len(models):
            raise ValueError(f"{len(prompts)} prompts, {len(seeds)} seeds, {len(models)} models")
        unknown = {m for m in models if m is not None and m not in self.registry.adapters}
        if unknown:
            raise ValueError(f"unknown adapters {sorted(unknown)}")
        names = [BASE_ADAPTER if m is None else m for m in models]
        results: list[Generation] = []
        for start in range(0, len(prompts), self.batch_size):
            end = start + self.batch_size
            chunk = (prompts[start:end], params, seeds[start:end])
            if (mixed or self.mixed) == "stacked":
                with self.stacked.rows(list(models[start:end])):
                    results.extend(self._generate_batch(*chunk))
            else:
                results.extend(self._generate_batch(*chunk, adapter_names=names[start:end]))
        return results


class PeftLayers:
    """A view of a :class:`MultiAdapterSampler` that applies adapters through peft's own LoRA
    layers (``adapter_names=``): the reference the stacked path is checked against."""

    def __init__(self, sampler: MultiAdapterSampler) -> None:
        self.sampler = sampler

    def generate_mixed(
        self,
        prompts: list[ChatPrompt],
        params: SamplingParams,
        seeds: list[int],
        models: Sequence[str | None],
    ) -> list[Generation]:
        return self.sampler.generate_mixed(prompts, params, seeds, models, mixed="peft")
