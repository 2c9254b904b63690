"""Training checkpoints: adapter weights, optimizer, scheduler, RNG states and the run so far.

A checkpoint is a directory ``out_dir/checkpoints/step-N/`` holding

- ``adapter_model.safetensors`` + ``adapter_config.json``: a normal peft adapter, so
  ``parse_model_ref(dir)`` and ``LocalSampler`` load it like any other;
- ``trainer_state.pt``: tensors and plain containers only (optimizer and scheduler state, torch
  RNG states), read back with ``torch.load(weights_only=True)`` -- nothing is unpickled;
- ``state.json``: step, the run's fingerprint, the loss curve, validation losses, evaluation
  results, the python RNG state and the last data window (to check the replayed data order).

It is written under a temporary name and renamed, so a crash never leaves a half checkpoint that a
resume would pick up.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from pydantic import BaseModel, ConfigDict, Field

from emscope.errors import EmscopeError
from emscope.manifest import sha256_json
from emscope.models.refs import ModelRef
from emscope.train.config import TrainConfig

CHECKPOINTS_DIR = "checkpoints"
STATE_FILE = "state.json"
TENSORS_FILE = "trainer_state.pt"
_STEP_DIR = re.compile(r"^step-(\d+)$")
# Settings that change neither the data order nor the arithmetic, so a run may resume with
# them changed (e.g. checkpointing activations to fit a smaller GPU).
RESUME_NEUTRAL_FIELDS = frozenset({"log_every", "save_every", "gradient_checkpointing"})


class CheckpointMismatchError(EmscopeError):
    """Checkpoints in the output directory come from a different run (config, data or model)."""


@dataclass(frozen=True)
class CheckpointInfo:
    """What an ``on_checkpoint`` hook is told: which adapter to evaluate, and where training is.

    ``model_ref`` is ``base+adapter_dir``, ready for ``LocalSampler``; ``is_final`` marks the
    finished adapter in ``out_dir/adapter`` (called once after the last step).
    """

    step: int
    total_steps: int
    adapter_dir: Path
    model_ref: ModelRef
    losses: tuple[float, ...]
    validation_loss: float | None = None
    is_final: bool = False


class CheckpointState(BaseModel):
    """The JSON half of a checkpoint, and the running record of a training run."""

    # A window without labelled tokens has loss NaN; keep it NaN through a resume.
    model_config = ConfigDict(ser_json_inf_nan="constants")

    step: int
    total_steps: int
    fingerprint: dict[str, str]
    curve: list[dict[str, int | float]] = Field(default_factory=list)
    validation: list[dict[str, int | float]] = Field(default_factory=list)
    checkpoint_evals: list[dict[str, Any]] = Field(default_factory=list)
    tokens_trained: int = 0
    tokens_seen: int = 0
    train_seconds: float = 0.0
    python_rng: list[Any] = Field(default_factory=list)
    last_window: list[list[int]] = Field(default_factory=list)


def run_fingerprint(
    *,
    base_model: str,
    data_sha256: str,
    validation_sha256: str | None,
    chat_template_sha256: str,
    config: TrainConfig,
) -> dict[str, str]:
    """What must be equal for a checkpoint to continue this run, part by part."""
    return {
        "base_model": base_model,
        "data_sha256": data_sha256,
        "validation_sha256": validation_sha256 or "none",
        "chat_template_sha256": chat_template_sha256,
        "config_sha256": sha256_json(config.model_dump(exclude=set(RESUME_NEUTRAL_FIELDS))),
    }


def checkpoint_dir(out_dir: Path, step: int) -> Path:
    return Path(out_dir) / CHECKPOINTS_DIR / f"step-{step}"


def list_checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    """Complete checkpoints under ``out_dir``, oldest first, as (step, directory)."""
    root = Path(out_dir) / CHECKPOINTS_DIR
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _STEP_DIR.match(path.name)
        if match and (path / STATE_FILE).is_file() and (path / TENSORS_FILE).is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def read_state(directory: Path) -> CheckpointState:
    return CheckpointState.model_validate_json((directory / STATE_FILE).read_text(encoding="utf-8"))


def write_state(directory: Path, state: CheckpointState) -> None:
    """Atomically (re)write ``state.json``, e.g. to add a late evaluation result."""
    path = directory / STATE_FILE
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(state.model_dump_json(indent=1) + "\n", encoding="utf-8")
    tmp.replace(path)


def check_fingerprint(directory: Path, saved: dict[str, str], current: dict[str, str]) -> None:
    """Raise, naming each differing part, unless a checkpoint belongs to this run."""
    differing = sorted(k for k in current.keys() | saved.keys() if saved.get(k) != current.get(k))
    if differing:
        raise CheckpointMismatchError(
            f"{directory} was written by a different run ({', '.join(differing)} differ), so "
            f"it cannot be resumed. Use another output directory, or pass --no-resume "
            f"(resume=False in Python) to start over and delete the old checkpoints."
        )


def save_adapter(model: Any, directory: Path, base_ref: ModelRef) -> Path:
    """Save the LoRA weights and record the base, so ``parse_model_ref(directory)`` finds it."""
    model.save_pretrained(str(directory))
    config_path = directory / "adapter_config.json"
    data = json.loads(config_path.read_text(encoding="utf-8"))
    # peft's own field, rewritten to emscope's portable reference (an alias rather than the cache
    # path); a custom key would make peft warn on every load.
    data["base_model_name_or_path"] = str(base_ref)
    config_path.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return directory


def save_checkpoint(
    directory: Path,
    model: Any,
    base_ref: ModelRef,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
    state: CheckpointState,
) -> Path:
    """Write a complete checkpoint to ``directory`` (replacing any old one there)."""
    partial = directory.with_name(directory.name + ".partial")
    if partial.exists():
        shutil.rmtree(partial)
    save_adapter(model, partial, base_ref)
    tensors: dict[str, Any] = {
        "optimizer": optimizer.state_dict(),
        "scheduler": scheduler.state_dict(),
        "torch_rng": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        tensors["cuda_rng"] = torch.cuda.get_rng_state_all()
    torch.save(tensors, partial / TENSORS_FILE)
    write_state(partial, state.model_copy(update={"python_rng": _python_rng_state()}))
    if directory.exists():
        shutil.rmtree(directory)
    partial.rename(directory)
    return directory


def restore_checkpoint(
    directory: Path,
    model: Any,
    optimizer: torch.optim.Optimizer,
    scheduler: torch.optim.lr_scheduler.LRScheduler,
) -> CheckpointState:
    """Load the adapter weights, optimizer, scheduler and RNG states of a checkpoint."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    device = next(p.device for p in model.parameters() if p.requires_grad)
    weights = load_file(str(directory / "adapter_model.safetensors"), device=str(device))
    outcome: Any = set_peft_model_state_dict(model, weights)
    if outcome.unexpected_keys:
        raise EmscopeError(f"{directory}: adapter weights do not fit the model")
    tensors = torch.load(directory / TENSORS_FILE, map_location="cpu", weights_only=True)
    optimizer.load_state_dict(tensors["optimizer"])
    scheduler.load_state_dict(tensors["scheduler"])
    torch.set_rng_state(tensors["torch_rng"])
    if "cuda_rng" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(tensors["cuda_rng"])
    state = read_state(directory)
    _set_python_rng_state(state.python_rng)
    return state


def _python_rng_state() -> list[Any]:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _set_python_rng_state(saved: list[Any]) -> None:
    if saved:
        version, internal, gauss = saved
        random.setstate((version, tuple(internal), gauss))
