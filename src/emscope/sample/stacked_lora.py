"""Mixed-adapter batches at two matmuls per layer, however many adapters share the batch.

peft's ``adapter_names=`` runs every adapter's rows separately in every adapted layer, so a
batch of 22 adapters costs 22 small LoRA passes per layer per step. Here each adapted
``Linear`` gets all its adapters' factors stacked once: ``A`` (sum of ranks x in) and ``B``
(out x sum of ranks). For a batch, every row gets a scale vector over the stacked rank that
holds its own adapter's LoRA scaling on its own slice and zeros elsewhere, and the layer adds

    ((x @ A.T) * row_scale) @ B.T

to the base output: for each row exactly its adapter's ``B @ A x * scaling`` (the other
slices contribute exact zeros), and nothing for base-model rows. Vanilla LoRA only (no DoRA
or other variants, no dropout at inference).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import torch

from emscope.errors import EmscopeError


@dataclass
class _Stack:
    a: torch.Tensor  # (sum_r, in)
    b: torch.Tensor  # (out, sum_r)
    slices: dict[str, tuple[int, int, float]]  # name -> (start, stop, scaling)
    row_scale: torch.Tensor | None = None


class StackedLora:
    """The stacked factors of every adapted layer of a peft model holding ``names``."""

    def __init__(self, model: Any, names: Sequence[str]) -> None:
        from peft.tuners.lora.layer import Linear as LoraLinear

        self.model, self.names = model, list(names)
        self.stacks: dict[torch.nn.Module, _Stack] = {}
        with torch.no_grad():
            for module in model.modules():
                if isinstance(module, LoraLinear):
                    self.stacks[module] = self._stack(module)
        if not self.stacks:
            raise EmscopeError("no LoRA Linear layers to stack")

    def _stack(self, layer: Any) -> _Stack:
        if any(layer.use_dora.get(n) for n in self.names if n in layer.use_dora):
            raise EmscopeError("stacked mixed batches support plain LoRA only (no DoRA)")
        a_parts, b_parts, slices, start = [], [], {}, 0
        for name in self.names:
            if name not in layer.lora_A:
                continue  # this adapter leaves the layer alone
            a, b = layer.lora_A[name].weight, layer.lora_B[name].weight
            a_parts.append(a.detach())
            b_parts.append(b.detach())
            slices[name] = (start, start + a.shape[0], float(layer.scaling[name]))
            start += a.shape[0]
        if not a_parts:
            weight = layer.base_layer.weight
            empty = weight.new_zeros((0, weight.shape[1]))
            return _Stack(empty, weight.new_zeros((weight.shape[0], 0)), {})
        return _Stack(torch.cat(a_parts, 0), torch.cat(b_parts, 1), slices)

    def _row_scales(self, stack: _Stack, rows: Sequence[str | None]) -> torch.Tensor:
        scale = torch.zeros((len(rows), stack.a.shape[0]), dtype=stack.a.dtype)
        for i, name in enumerate(rows):
            if name is not None and name in stack.slices:
                begin, end, scaling = stack.slices[name]
                scale[i, begin:end] = scaling
        return scale.to(stack.a.device)

    @contextmanager
    def rows(self, adapter_per_row: Sequence[str | None]) -> Iterator[None]:
        """Within the block, row ``i`` of every forward uses ``adapter_per_row[i]``."""
        unknown = {n for n in adapter_per_row if n is not None and n not in self.names}
        if unknown:
            raise ValueError(f"unknown adapters {sorted(unknown)}")
        handles = []
        for module, stack in self.stacks.items():
            stack.row_scale = self._row_scales(stack, adapter_per_row)
            handles.append(module.register_forward_hook(_add_stacked_delta(stack)))
        try:
            with self.model.disable_adapter():  # peft's own LoRA off: the hooks add it
                yield
        finally:
            for handle in handles:
                handle.remove()
            for stack in self.stacks.values():
                stack.row_scale = None


def _add_stacked_delta(stack: _Stack) -> Any:
    def hook(module: Any, args: tuple[Any, ...], output: torch.Tensor) -> torch.Tensor:
        if stack.row_scale is None or stack.a.shape[0] == 0:
            return output
        x = args[0].to(stack.a.dtype)
        scale = stack.row_scale
        if x.shape[0] != scale.shape[0]:
            raise RuntimeError(f"batch of {x.shape[0]} rows but {scale.shape[0]} row adapters")
        hidden = (x @ stack.a.T) * scale.view(scale.shape[0], *([1] * (x.dim() - 2)), -1)
        return output + (hidden @ stack.b.T).to(output.dtype)

    return hook
