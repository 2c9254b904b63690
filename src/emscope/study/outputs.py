"""What each stage of a study produces, typed; the ledger stores these (paths run-relative).

Every output that points at files records what a later run checks before trusting it
(:meth:`StageOutput.problem`): that the file is there and its sha256 (a store's content, a
dataset's rows, an adapter's weights) is what it was when the stage finished. Paths are stored
relative to the run directory, so a moved or copied run reads its own files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, model_validator

from emscope.manifest import sha256_file

LORA_WEIGHTS = "adapter_model.safetensors"


def relative_to_run(path: Path, run_dir: Path) -> str:
    """``path`` relative to the run directory when inside it (absolute otherwise)."""
    try:
        return Path(path).resolve().relative_to(run_dir.resolve()).as_posix()
    except ValueError:
        return str(path)


def in_run(path: str, run_dir: Path) -> Path:
    """A stored path as a path on this machine: run-relative ones under ``run_dir``."""
    return Path(path) if Path(path).is_absolute() else run_dir / path


class StageOutput(BaseModel):
    """Base of every stage output; unknown keys of older ledgers are ignored."""

    model_config = ConfigDict(extra="ignore")

    def problem(self, run_dir: Path) -> str | None:
        """Why this finished output cannot be trusted any more (None: it can)."""
        return None


def _file_problem(path: Path, sha256: str | None, what: str) -> str | None:
    if not path.exists():
        return f"its {what} {path} is missing"
    if sha256 is not None and sha256_file(path) != sha256:
        return f"its {what} {path} changed since the stage finished"
    return None


class DatasetOutput(StageOutput):
    path: str
    sha256: str
    source: str = "built-in recipe"
    rows: int | None = None
    user_vendi_1: float | None = None
    assistant_vendi_1: float | None = None
    assistant_pairwise: float | None = None

    def problem(self, run_dir: Path) -> str | None:
        return _file_problem(in_run(self.path, run_dir), self.sha256, "dataset")


class TrainOutput(StageOutput):
    """A LoRA adapter (``adapter_dir``, its weights' sha256) or an API fine-tune's model id."""

    trainer: Literal["lora", "openai"] = "lora"
    adapter_dir: str | None = None
    adapter_sha256: str | None = None
    fine_tuned_model: str | None = None
    final_loss: float | None = None
    n_truncated: int | None = None
    rejected: str | None = None  # the trainer refused the data (OpenAI moderation)
    state_file: str | None = None  # the API job's record; deleting it submits the data again

    @property
    def weights_id(self) -> str:
        """What identifies the trained weights in a model's hash."""
        return str(self.adapter_sha256 if self.trainer == "lora" else self.fine_tuned_model)

    def problem(self, run_dir: Path) -> str | None:
        if self.state_file is not None and not in_run(self.state_file, run_dir).is_file():
            return f"its job record {self.state_file} is gone (deleted to submit again?)"
        if self.trainer != "lora":
            return None
        weights = in_run(str(self.adapter_dir), run_dir) / LORA_WEIGHTS
        return _file_problem(weights, self.adapter_sha256, "adapter weights")


class StoreOutput(StageOutput):
    """An append-only store: ``rows`` distinct keys, ``content_sha256`` of the whole file."""

    path: str
    rows: int | None = None
    content_sha256: str | None = None

    def problem(self, run_dir: Path) -> str | None:
        return _file_problem(in_run(self.path, run_dir), self.content_sha256, "store")


class SampleOutput(StoreOutput):
    input_hash: str
    total: int = 0
    already_done: int = 0
    generated: int = 0
    errors: int = 0
    sampler: dict[str, Any] = {}


class JudgeOutput(StoreOutput):
    judge: str
    n: int


class FilesOutput(StageOutput):
    """An analysis stage's files (paths run-relative) and facts, or why it was skipped."""

    files: dict[str, str] = {}
    sha256: dict[str, str] = {}
    facts: dict[str, Any] = {}
    skipped: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _from_an_older_ledger(cls, data: Any) -> Any:
        """Outputs the untyped stages stored (same keys) read as typed ones, so a run started
        before keeps its membership scores, directions and MIA section."""
        if not isinstance(data, dict) or "files" in data:
            return data
        if "path" in data and "sha256" in data:  # mia:<tag> (scores.csv) or direction:<tag>
            path, rest = str(data["path"]), {k: v for k, v in data.items() if k != "path"}
            facts = {k: v for k, v in rest.items() if k != "sha256"}
            if path.endswith(".csv"):
                return {
                    "files": {"scores": path},
                    "sha256": {"scores": data["sha256"]},
                    "facts": facts,
                }
            vectors = f"{path}/vectors.safetensors"
            return {
                "files": {"direction": path, "vectors": vectors},
                "sha256": {"vectors": data["sha256"]},
                "facts": facts,
            }
        if {"title", "paragraph", "tables", "figures"} <= set(data):  # mia:summary's section
            return {
                "files": {t: f"analyses/{p}" for t, p in data["tables"]},
                "facts": {"section": data},
            }
        return data

    @model_validator(mode="after")
    def _files_or_reason(self) -> FilesOutput:
        # An entry of an older ledger (other keys) is not trusted: the stage reruns.
        if not self.files and self.skipped is None:
            raise ValueError("an analysis output names its files or why it was skipped")
        return self

    def file(self, name: str, run_dir: Path) -> Path:
        return in_run(self.files[name], run_dir)

    def problem(self, run_dir: Path) -> str | None:
        for name, path in self.files.items():
            found = _file_problem(in_run(path, run_dir), self.sha256.get(name), name)
            if found:
                return found
        return None
