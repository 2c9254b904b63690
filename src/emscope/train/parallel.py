"""Where training runs: one device, or several GPUs through ``accelerate``.

Every process builds the same data windows (same seed), so each knows the labelled-token count
of the whole window without communicating. With several processes, process ``r`` takes
micro-batches ``r, r + world, ...`` of each window and scales its loss by ``world / tokens``;
DDP's gradient average then gives exactly the single-device gradient. A process that runs out
of micro-batches in a short window backpropagates a zero-weighted one, so all processes make the
same collective calls.

The multi-GPU path is only taken when ``torch.cuda.device_count() > 1`` (launch with
``accelerate launch`` or ``torchrun``). It has not been run by the test suite, which has no GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import nullcontext
from typing import Any, Protocol

import torch

from emscope.models.loading import default_device
from emscope.train.objective import Batch, accumulate_gradients, n_target_tokens, summed_token_loss


class Runtime(Protocol):
    """One or several processes training the same model."""

    device: torch.device
    world_size: int
    is_main: bool

    def wrap(self, model: Any) -> Any: ...

    def unwrap(self, model: Any) -> Any: ...

    def accumulate(
        self, model: Any, batches: list[Batch], autocast: Callable[[], Any]
    ) -> tuple[float, int]: ...

    def barrier(self) -> None: ...


class SingleDevice:
    """The plain case: one process, one device."""

    world_size = 1
    is_main = True

    def __init__(self, device: torch.device | None = None) -> None:
        self.device = device or default_device()

    def wrap(self, model: Any) -> Any:
        return model

    def unwrap(self, model: Any) -> Any:
        return model

    def accumulate(
        self, model: Any, batches: list[Batch], autocast: Callable[[], Any]
    ) -> tuple[float, int]:
        return accumulate_gradients(model, batches, autocast)

    def barrier(self) -> None:
        return None


class AccelerateRuntime:
    """Data parallel over GPUs with ``accelerate`` (untested here: no GPU in CI)."""

    def __init__(self) -> None:
        from accelerate import Accelerator

        # Mixed precision stays with the trainer's own autocast, identical on every path.
        self.accelerator = Accelerator(mixed_precision="no")
        self.device: torch.device = self.accelerator.device
        self.world_size: int = self.accelerator.num_processes
        self.rank: int = self.accelerator.process_index
        self.is_main: bool = self.accelerator.is_main_process

    def wrap(self, model: Any) -> Any:
        return self.accelerator.prepare_model(model)

    def unwrap(self, model: Any) -> Any:
        return self.accelerator.unwrap_model(model)

    def accumulate(
        self, model: Any, batches: list[Batch], autocast: Callable[[], Any]
    ) -> tuple[float, int]:
        total_tokens = sum(n_target_tokens(b) for b in batches)
        if total_tokens == 0:
            return float("nan"), 0
        mine = batches[self.rank :: self.world_size]
        rounds = -(-len(batches) // self.world_size)
        summed = torch.zeros((), device=self.device)
        for i in range(rounds):
            batch, weight = (mine[i], 1.0) if i < len(mine) else (batches[0], 0.0)
            # Gradients are all-reduced once per window, on its last backward pass.
            sync = nullcontext() if i == rounds - 1 else model.no_sync()
            with sync:
                with autocast():
                    loss_sum = summed_token_loss(model, batch)
                (loss_sum * (weight * self.world_size / total_tokens)).backward()
            summed += loss_sum.detach().float() * weight
        summed = self.accelerator.reduce(summed, reduction="sum")
        return float(summed) / total_tokens, total_tokens

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()


def make_runtime() -> Runtime:
    """Several GPUs: ``accelerate``; otherwise the single default device."""
    if torch.cuda.is_available() and torch.cuda.device_count() > 1:
        runtime = AccelerateRuntime()
        # Several GPUs but launched as one process: no DDP wrapper, so train as usual.
        return runtime if runtime.world_size > 1 else SingleDevice(runtime.device)
    return SingleDevice()
