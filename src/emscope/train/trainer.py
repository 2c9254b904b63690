"""Fine-tune a LoRA adapter: seeded, resumable, assistant-only loss, a manifest on disk.

Hand-written rather than HF ``Trainer`` so the loss normalisation, the label mask and the data
order are visible and tested. Run::

    ref = parse_model_ref("smollm2-135m")
    result = train_lora(ref, examples, get_preset("demo", save_every=50), Path("runs/x"))

Calling it again with the same arguments after a crash continues from the last checkpoint and
ends exactly where an uninterrupted run would (see ``docs/training.md``).
"""

from __future__ import annotations

import logging
import random
import shutil
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from emscope.data.schema import ChatExample
from emscope.errors import EmscopeError, InputError
from emscope.manifest import Manifest, sha256_json, sha256_text, write_manifest
from emscope.models.loading import load_tokenizer
from emscope.models.refs import ModelRef
from emscope.train.checkpoint import (
    CHECKPOINTS_DIR,
    CheckpointMismatchError,
    check_fingerprint,
    list_checkpoints,
    read_state,
    run_fingerprint,
    save_adapter,
)
from emscope.train.config import TrainConfig
from emscope.train.masking import EncodedExample, assistant_token_mask
from emscope.train.model_setup import base_dtype
from emscope.train.objective import accumulate_gradients, summed_token_loss
from emscope.train.parallel import Runtime, make_runtime
from emscope.train.session import (
    CheckpointHook,
    Progress,
    TrainingSession,
    accumulation_windows,
    linear_schedule,
)

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

__all__ = [
    "CheckpointHook",
    "CheckpointMismatchError",
    "Progress",
    "TrainResult",
    "accumulate_gradients",
    "accumulation_windows",
    "encode_examples",
    "linear_schedule",
    "save_adapter",
    "summed_token_loss",
    "train_lora",
]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """Where the adapter went and how training went.

    ``tokens_per_second`` counts every non-padding input token (prompt and answer) over the time
    spent in optimizer steps. ``validation`` holds ``{"step", "loss", "tokens"}`` points and
    ``checkpoint_evals`` the ``on_checkpoint`` results, each with its ``step``.
    """

    adapter_dir: Path
    losses: list[float]
    n_steps: int
    n_truncated: int
    tokens_per_second: float
    validation: list[dict[str, int | float]] = field(default_factory=list)
    checkpoint_evals: list[dict[str, Any]] = field(default_factory=list)
    n_validation_truncated: int = 0
    resumed_from_step: int | None = None

    @property
    def final_validation_loss(self) -> float | None:
        return float(self.validation[-1]["loss"]) if self.validation else None


@dataclass(frozen=True)
class _PreparedData:
    encoded: list[EncodedExample]
    held_out: list[EncodedExample]
    inputs: dict[str, str]
    pad_token_id: int


def seed_everything(seed: int) -> None:
    random.seed(seed)
    torch.manual_seed(seed)


def encode_examples(
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[ChatExample],
    config: TrainConfig,
    *,
    name: str = "examples",
) -> list[EncodedExample]:
    """Tokenize and mask every example, naming the one at fault on bad input."""
    refuse_long_rows(examples, config.max_row_chars, name=name)
    encoded: list[EncodedExample] = []
    for i, example in enumerate(examples):
        try:
            ex = assistant_token_mask(
                tokenizer, example.messages, loss_on=config.loss_on, max_length=config.max_length
            )
        except InputError as exc:
            raise InputError(exc.message, field=f"{name}[{i}].{exc.field or 'messages'}") from exc
        encoded.append(ex)
    return encoded


def refuse_long_rows(
    examples: Sequence[ChatExample],
    limit: int | None,
    *,
    name: str = "examples",
    file: str | Path | None = None,
    lines: Sequence[int] | None = None,
) -> None:
    """Raise for the first row with more than ``limit`` characters (its line, when known)."""
    if limit is None:
        return
    for i, example in enumerate(examples):
        chars = sum(len(m.content) for m in example.messages)
        if chars > limit:
            raise InputError(
                f"row of {chars:,} characters in {len(example.messages):,} turns is longer "
                f"than max_row_chars={limit:,} (tokenising it would take very long)",
                file=file,
                line=lines[i] if lines is not None else None,
                field=f"{name}[{i}]",
                hint="shorten or drop the row, or raise the limit (--set max_row_chars=N, "
                "train.overrides.max_row_chars in a study; null for none)",
            )


def truncation_counts(encoded: Sequence[EncodedExample]) -> tuple[int, int]:
    """(examples cut at ``max_length``, of which how many lost every labelled token)."""
    cut = [ex for ex in encoded if ex.truncated]
    return len(cut), sum(ex.n_labelled == 0 for ex in cut)


def _resume_point(
    out_dir: Path, fingerprint: dict[str, str], resume: bool, runtime: Runtime
) -> Path | None:
    found = list_checkpoints(out_dir)
    if not found:
        return None
    if not resume:
        log.warning("starting over: deleting %d old checkpoints in %s", len(found), out_dir)
        if runtime.is_main:
            shutil.rmtree(out_dir / CHECKPOINTS_DIR)
        runtime.barrier()
        return None
    directory = found[-1][1]
    check_fingerprint(directory, read_state(directory).fingerprint, fingerprint)
    log.info("resuming from %s", directory)
    return directory


def _prepare(
    base_ref: ModelRef,
    examples: list[ChatExample],
    validation: list[ChatExample] | None,
    config: TrainConfig,
) -> _PreparedData:
    tokenizer = load_tokenizer(base_ref)
    encoded = encode_examples(tokenizer, examples, config)
    held_out = encode_examples(tokenizer, validation or [], config, name="validation")
    for what, data in (("training", encoded), ("validation", held_out)):
        n_cut, n_emptied = truncation_counts(data)
        if n_cut:
            log.warning(
                "%d of %d %s examples truncated to %s tokens (%d lost every trained token)",
                n_cut,
                len(data),
                what,
                config.max_length,
                n_emptied,
            )
    inputs = {
        "base_model": str(base_ref),
        "data_sha256": sha256_json([e.model_dump() for e in examples]),
        "chat_template_sha256": sha256_text(str(tokenizer.chat_template or "")),
    }
    if validation:
        inputs["validation_sha256"] = sha256_json([e.model_dump() for e in validation])
    return _PreparedData(encoded, held_out, inputs, int(tokenizer.pad_token_id))


def _manifest(
    session: TrainingSession,
    data: _PreparedData,
    resumed_from_step: int | None,
    wall_time_s: float,
) -> Manifest:
    state, config, runtime = session.state, session.config, session.runtime
    n_truncated, n_emptied = truncation_counts(data.encoded)
    validation = state.validation
    return Manifest(
        kind="lora-adapter",
        config=config.model_dump(),
        inputs=data.inputs,
        outputs={
            "adapter_dir": "adapter",
            "n_examples": len(data.encoded),
            "n_steps": session.total_steps,
            "n_truncated": n_truncated,
            "n_truncated_without_target": n_emptied,
            "n_validation_examples": len(data.held_out),
            "n_validation_truncated": truncation_counts(data.held_out)[0],
            "tokens_trained": state.tokens_trained,
            "tokens_seen": state.tokens_seen,
            "tokens_per_second": session.tokens_per_second,
            "train_seconds": state.train_seconds,
            "wall_time_s": wall_time_s,
            "bf16": session.bf16,
            "base_dtype": str(base_dtype(session.bf16, runtime.device)).removeprefix("torch."),
            "device": runtime.device.type,
            "world_size": runtime.world_size,
            "resumed_from_step": resumed_from_step,
            "checkpoints": [
                str(path.relative_to(session.out_dir))
                for _, path in list_checkpoints(session.out_dir)
            ],
            "fingerprint": state.fingerprint,
            "loss_curve": state.curve,
            "validation_curve": validation,
            "final_validation_loss": validation[-1]["loss"] if validation else None,
            "checkpoint_evals": state.checkpoint_evals,
        },
        seed=config.seed,
    )


def train_lora(
    base_ref: ModelRef,
    examples: list[ChatExample],
    config: TrainConfig,
    out_dir: Path,
    *,
    progress: Progress | None = None,
    resume: bool = True,
    validation: list[ChatExample] | None = None,
    on_checkpoint: CheckpointHook | None = None,
) -> TrainResult:
    """Fine-tune a LoRA adapter on chat examples; writes ``out_dir/adapter/`` and a manifest.

    - ``progress(step, total_steps, loss)`` is called every ``config.log_every`` steps and on
      the last one.
    - With ``config.save_every = N`` a checkpoint is written every N optimizer steps. With
      ``resume`` (the default) a call whose ``out_dir`` holds checkpoints of the same run
      (base model, data, validation data, chat template and config) continues from the last
      one; checkpoints of another run raise :class:`CheckpointMismatchError`. ``resume=False``
      deletes them and starts over.
    - ``validation``: examples whose mean labelled-token loss is measured (eval mode, no grad)
      at every log step, every checkpoint and the end. Nothing is held out unless you pass it.
    - ``on_checkpoint(info)`` runs at each checkpoint and once on the final adapter; its
      JSON-serialisable dict is stored per step in the manifest (``checkpoint_evals``).
    """
    if base_ref.adapter is not None:
        raise EmscopeError(f"{base_ref}: training on top of an adapter is not supported")
    if not examples:
        raise InputError("no training examples", field="examples")
    out_dir = Path(out_dir)
    started = time.perf_counter()
    seed_everything(config.seed)
    data = _prepare(base_ref, examples, validation, config)
    fingerprint = run_fingerprint(
        base_model=data.inputs["base_model"],
        data_sha256=data.inputs["data_sha256"],
        validation_sha256=data.inputs.get("validation_sha256"),
        chat_template_sha256=data.inputs["chat_template_sha256"],
        config=config,
    )
    runtime = make_runtime()
    resume_from = _resume_point(out_dir, fingerprint, resume, runtime)
    session = TrainingSession(
        base_ref,
        config,
        out_dir,
        data.encoded,
        data.held_out,
        data.pad_token_id,
        fingerprint,
        runtime,
        progress=progress,
        on_checkpoint=on_checkpoint,
    )
    resumed_from_step = None
    if resume_from is not None:
        resumed_from_step = session.restore(resume_from)
        session.evaluate_pending(resume_from)
    session.train()
    adapter_dir = session.finish()
    if runtime.is_main:
        write_manifest(
            out_dir,
            _manifest(session, data, resumed_from_step, time.perf_counter() - started),
        )
    state = session.state
    return TrainResult(
        adapter_dir=adapter_dir,
        losses=[float(point["loss"]) for point in state.curve],
        n_steps=session.total_steps,
        n_truncated=truncation_counts(data.encoded)[0],
        tokens_per_second=session.tokens_per_second,
        validation=[dict(v) for v in state.validation],
        checkpoint_evals=list(state.checkpoint_evals),
        n_validation_truncated=truncation_counts(data.held_out)[0],
        resumed_from_step=resumed_from_step,
    )
