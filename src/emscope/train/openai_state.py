"""The on-disk record of one OpenAI fine-tuning job (``state_dir/job.json``).

The record is what makes a rerun cheap: it is written after every step that costs money or time
(upload, job creation, each status change), so a rerun with the same :class:`JobSpec` re-attaches
to the job instead of uploading and paying twice. It never holds the API key.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from emscope.errors import InputError
from emscope.manifest import Manifest, sha256_json
from emscope.train.openai_presets import OpenAIHyperparameters

STATE_FILE = "job.json"
MANIFEST_KIND = "openai-fine-tune"
HISTORY_DIR = "history"
TERMINAL_STATUSES = ("succeeded", "failed", "cancelled")


def _now() -> str:
    return datetime.now(UTC).isoformat()


class JobSpec(BaseModel):
    """Everything that decides what a job trains; equal specs mean the same job."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    model: str
    dataset_sha256: str
    validation_sha256: str | None = None
    hyperparameters: OpenAIHyperparameters
    suffix: str | None = None
    seed: int | None = None

    def key(self) -> str:
        """A stable hash of the spec, sent as job metadata so a lost job id can be found again."""
        return sha256_json(self.model_dump(mode="json"))


class JobState(BaseModel):
    """Progress of one job: uploaded file ids, the job id, its status and result."""

    spec: JobSpec
    preset: str
    training_file_id: str | None = None
    validation_file_id: str | None = None
    create_attempted: bool = False
    job_id: str | None = None
    status: str | None = None
    fine_tuned_model: str | None = None
    trained_tokens: int | None = None
    reported_hyperparameters: dict[str, int | float | str] | None = None
    error_code: str | None = None
    error_message: str | None = None
    last_event_id: str | None = None
    created_at: str = ""
    updated_at: str = ""

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL_STATUSES


def load_state(state_dir: Path) -> JobState | None:
    """The recorded job, or None when the directory has none."""
    path = state_dir / STATE_FILE
    if not path.is_file():
        return None
    try:
        return JobState.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(
            f"unreadable job state ({exc}); move it away to start afresh", file=path
        ) from exc


def save_state(state_dir: Path, state: JobState, secrets: tuple[str, ...] = ()) -> Path:
    """Write ``job.json`` atomically; any of ``secrets`` found in the text is redacted."""
    state.updated_at = _now()
    state.created_at = state.created_at or state.updated_at
    text = redact(state.model_dump_json(indent=2), secrets) + "\n"
    state_dir.mkdir(parents=True, exist_ok=True)
    path = state_dir / STATE_FILE
    tmp = path.with_name(f".{STATE_FILE}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    return path


def archive_state(state_dir: Path, state: JobState) -> Path:
    """Move the current ``job.json`` to ``history/`` (named after its job) and return the path."""
    history = state_dir / HISTORY_DIR
    history.mkdir(parents=True, exist_ok=True)
    stem = state.job_id or f"unstarted-{state.spec.key()[:12]}"
    target = history / f"{stem}.json"
    os.replace(state_dir / STATE_FILE, target)
    return target


def redact(text: str, secrets: tuple[str, ...]) -> str:
    """``text`` with every non-empty secret replaced by ``[redacted]``."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "[redacted]")
    return text


def job_manifest(state: JobState, model_ref: str, dataset_summary: dict[str, Any]) -> Manifest:
    """The manifest (kind ``openai-fine-tune``) of a succeeded job."""
    spec = state.spec
    inputs = {"train.jsonl": spec.dataset_sha256}
    if spec.validation_sha256 is not None:
        inputs["validation.jsonl"] = spec.validation_sha256
    return Manifest(
        kind=MANIFEST_KIND,
        config={
            "model": spec.model,
            "preset": state.preset,
            "hyperparameters": spec.hyperparameters.api_dict(),
            "suffix": spec.suffix,
        },
        inputs=inputs,
        outputs={
            "model_ref": model_ref,
            "fine_tuned_model": state.fine_tuned_model,
            "job_id": state.job_id,
            "training_file_id": state.training_file_id,
            "validation_file_id": state.validation_file_id,
            "reported_hyperparameters": state.reported_hyperparameters,
            "trained_tokens": state.trained_tokens,
            "dataset": dataset_summary,
        },
        seed=spec.seed,
    )
