"""Where a study's per-model work (dataset -> train -> sample) runs: in this process, or on Ray.

An execution backend is one function, ``(runner, jobs) -> results``, that returns one
``ModelJobResult`` per job in the order of ``jobs``. Judging, analyses and the report always run
in the calling process afterwards. Backends never change a stage's input hash, so a study started
on one backend resumes on another.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from emscope.study.config import ExecutionSection
from emscope.study.plan import ModelJob

if TYPE_CHECKING:
    from emscope.study.runner import StudyRunner


@dataclass(frozen=True)
class ModelJobResult:
    """The ledger outputs of one model's stages: its dataset (None for the base model) and one
    ``(sample output, triggered)`` pair per sample file."""

    dataset: dict[str, Any] | None
    samples: list[tuple[dict[str, Any], bool]]
    stage_seconds: dict[str, float] = field(default_factory=dict)


ExecuteJobs = Callable[["StudyRunner", Sequence[ModelJob]], list[ModelJobResult]]


def run_jobs_locally(runner: StudyRunner, jobs: Sequence[ModelJob]) -> list[ModelJobResult]:
    """One model after another, in this process."""
    return [runner.run_model_job(job) for job in jobs]


def executor_for(settings: ExecutionSection) -> ExecuteJobs:
    """The backend the study's ``execution`` section names."""
    if settings.backend == "ray":
        from emscope.study.ray_backend import run_jobs_on_ray

        return run_jobs_on_ray
    return run_jobs_locally
