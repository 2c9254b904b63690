"""One training run's loop: optimizer steps over seeded windows, validation, checkpoints, hooks.

:func:`emscope.train.trainer.train_lora` prepares the data and writes the manifest; this module
is the part that runs per step.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

import torch

from emscope.errors import EmscopeError
from emscope.models.refs import ModelRef
from emscope.train.checkpoint import (
    CheckpointInfo,
    CheckpointMismatchError,
    CheckpointState,
    checkpoint_dir,
    read_state,
    restore_checkpoint,
    save_adapter,
    save_checkpoint,
    write_state,
)
from emscope.train.collate import PaddingCollator, length_grouped_batches, shuffled_batches
from emscope.train.config import TrainConfig
from emscope.train.masking import EncodedExample
from emscope.train.model_setup import build_model, use_bf16
from emscope.train.objective import Batch, mean_token_loss
from emscope.train.parallel import Runtime

Progress = Callable[[int, int, float], None]
CheckpointHook = Callable[[CheckpointInfo], Mapping[str, Any]]


def linear_schedule(step: int, warmup_steps: int, total_steps: int) -> float:
    """LR multiplier at optimizer step ``step`` (0-based): linear warmup, then linear decay.

    Warmup reaches the full rate at step ``warmup_steps - 1`` (no wasted step at lr 0); the
    decay ends just above 0 on the last step.
    """
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    return max(0.0, (total_steps - step) / max(1, total_steps - warmup_steps))


def steps_per_epoch(n_examples: int, config: TrainConfig) -> int:
    n_batches = -(-n_examples // config.batch_size)
    return -(-n_batches // config.grad_accum)


def accumulation_windows(
    encoded: list[EncodedExample], config: TrainConfig, generator: torch.Generator
) -> Iterator[list[list[int]]]:
    """Groups of up to ``grad_accum`` micro-batches (index lists), epoch after epoch, forever.

    The order is a function of the seed alone, so a resumed run rebuilds it by replaying.
    """
    lengths = [len(ex.input_ids) for ex in encoded]
    while True:
        if config.group_by_length:
            batches = length_grouped_batches(lengths, config.batch_size, generator)
        else:
            batches = shuffled_batches(len(encoded), config.batch_size, generator)
        for start in range(0, len(batches), config.grad_accum):
            yield batches[start : start + config.grad_accum]


@contextmanager
def rng_preserved() -> Iterator[None]:
    """Hooks and evaluation may draw random numbers; training's RNG streams must not notice."""
    python_state = random.getstate()
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    try:
        with torch.random.fork_rng(devices=devices):
            yield
    finally:
        random.setstate(python_state)


def _json_metrics(metrics: Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(metrics, Mapping):
        raise EmscopeError(f"on_checkpoint must return a dict, got {type(metrics).__name__}")
    try:
        json.dumps(dict(metrics))
    except (TypeError, ValueError) as exc:
        raise EmscopeError(f"on_checkpoint returned metrics that are not JSON: {exc}") from exc
    return dict(metrics)


class TrainingSession:
    """The moving parts of one training call, so each phase of the loop is one short method."""

    def __init__(
        self,
        base_ref: ModelRef,
        config: TrainConfig,
        out_dir: Path,
        encoded: list[EncodedExample],
        held_out: list[EncodedExample],
        pad_token_id: int,
        fingerprint: dict[str, str],
        runtime: Runtime,
        *,
        progress: Progress | None = None,
        on_checkpoint: CheckpointHook | None = None,
    ) -> None:
        self.base_ref, self.config, self.out_dir, self.runtime = base_ref, config, out_dir, runtime
        self.encoded, self.held_out = encoded, held_out
        self.bf16 = use_bf16(config)
        self.model = build_model(base_ref, config, runtime.device, self.bf16)
        self.params = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.AdamW(
            self.params, lr=config.lr, weight_decay=config.weight_decay
        )
        self.total_steps = config.max_steps or config.epochs * steps_per_epoch(len(encoded), config)
        total = self.total_steps
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: linear_schedule(s, config.warmup_steps, total)
        )
        self.collate = PaddingCollator(pad_token_id)
        self.windows = accumulation_windows(
            encoded, config, torch.Generator().manual_seed(config.seed)
        )
        self.state = CheckpointState(step=0, total_steps=total, fingerprint=fingerprint)
        self.progress, self.on_checkpoint = progress, on_checkpoint

    @property
    def tokens_per_second(self) -> float:
        """Non-padding input tokens per second of optimizer steps, over every resumed part."""
        seconds = self.state.train_seconds
        return self.state.tokens_seen / seconds if seconds > 0 else 0.0

    def autocast(self) -> Any:
        if not self.bf16:
            return nullcontext()
        return torch.autocast(device_type=self.runtime.device.type, dtype=torch.bfloat16)

    def restore(self, directory: Path) -> int:
        """Continue from a checkpoint: weights, optimizer, scheduler, RNGs, data position."""
        self.state = restore_checkpoint(directory, self.model, self.optimizer, self.scheduler)
        window: list[list[int]] = []
        for _ in range(self.state.step):
            window = next(self.windows)
        if self.state.last_window and window != self.state.last_window:
            raise CheckpointMismatchError(
                f"{directory}: the data order replayed from the seed differs from the one the "
                f"checkpoint recorded (was the batching code changed?)"
            )
        return self.state.step

    def train(self) -> None:
        config, state = self.config, self.state
        model = self.runtime.wrap(self.model)
        for step in range(state.step, self.total_steps):
            tick = time.perf_counter()
            window = next(self.windows)
            batches = [self._batch(idx) for idx in window]
            lr = float(self.scheduler.get_last_lr()[0])
            loss, n_tokens = self.runtime.accumulate(model, batches, self.autocast)
            if n_tokens and config.max_grad_norm is not None:
                torch.nn.utils.clip_grad_norm_(self.params, config.max_grad_norm)
            if n_tokens:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
            self.scheduler.step()
            done = step + 1
            state.step, state.last_window = done, window
            state.tokens_trained += n_tokens
            state.tokens_seen += sum(int(b["attention_mask"].sum()) for b in batches)
            state.curve.append({"step": done, "loss": loss, "lr": lr, "tokens": n_tokens})
            state.train_seconds += time.perf_counter() - tick
            is_log = done % config.log_every == 0 or done == self.total_steps
            every = config.save_every
            is_checkpoint = every is not None and done % every == 0 and done < self.total_steps
            if self.held_out and (is_log or is_checkpoint):
                self.validate()
            if is_checkpoint:
                self.checkpoint()
            if self.progress is not None and is_log:
                self.progress(done, self.total_steps, loss)

    def _batch(self, indices: list[int]) -> Batch:
        batch = self.collate([self.encoded[i] for i in indices])
        return {k: v.to(self.runtime.device) for k, v in batch.items()}

    def validate(self) -> None:
        with rng_preserved():
            loss, n_tokens = mean_token_loss(
                self.model,
                self.held_out,
                self.collate,
                batch_size=self.config.batch_size,
                device=self.runtime.device,
                autocast=self.autocast,
            )
        self.state.validation.append({"step": self.state.step, "loss": loss, "tokens": n_tokens})

    def checkpoint(self) -> None:
        directory = checkpoint_dir(self.out_dir, self.state.step)
        if self.runtime.is_main:
            save_checkpoint(
                directory, self.model, self.base_ref, self.optimizer, self.scheduler, self.state
            )
        self.runtime.barrier()
        self.evaluate(directory)

    def evaluate(self, adapter_dir: Path, *, is_final: bool = False) -> None:
        """Run ``on_checkpoint`` on a saved adapter and keep its metrics (in the checkpoint too)."""
        if self.on_checkpoint is None:
            return
        if self.runtime.is_main:
            step = self.state.step
            validation = [v["loss"] for v in self.state.validation if v["step"] == step]
            info = CheckpointInfo(
                step=step,
                total_steps=self.total_steps,
                adapter_dir=adapter_dir,
                model_ref=self.base_ref.with_adapter(adapter_dir),
                losses=tuple(float(p["loss"]) for p in self.state.curve),
                validation_loss=float(validation[-1]) if validation else None,
                is_final=is_final,
            )
            with rng_preserved():
                metrics = _json_metrics(self.on_checkpoint(info))
            where = str(adapter_dir.relative_to(self.out_dir))
            record = {"step": step, "adapter_dir": where, "final": is_final, **metrics}
            self.state.checkpoint_evals.append(record)
            if not is_final:
                saved = read_state(adapter_dir)
                saved.checkpoint_evals = list(self.state.checkpoint_evals)
                write_state(adapter_dir, saved)
        self.runtime.barrier()

    def evaluate_pending(self, directory: Path) -> None:
        """A resumed checkpoint whose evaluation was cut off gets it now."""
        if not any(e["step"] == self.state.step for e in self.state.checkpoint_evals):
            self.evaluate(directory)

    def finish(self) -> Path:
        adapter_dir = self.out_dir / "adapter"
        if self.runtime.is_main:
            save_adapter(self.model, adapter_dir, self.base_ref)
        self.runtime.barrier()
        self.evaluate(adapter_dir, is_final=True)
        return adapter_dir
