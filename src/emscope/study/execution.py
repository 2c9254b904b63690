"""Where a study's per-model work (dataset -> train -> sample) runs: in this process, or on Ray.

An executor receives a :class:`JobSet`: the jobs, the per-job function to run one in this
process, the ledger lookup that gives a finished job's result without running anything, and a
picklable :class:`JobWorker` that runs a job by tag in another process. It returns one
``ModelJobResult`` per job, in the order of the jobs. Judging, analyses and the report always run
in the calling process afterwards. Executors never change a stage's input hash, so a study
started on one resumes on another. Nothing here imports the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from rich.console import Console

from emscope.study.config import ExecutionSection
from emscope.study.ledger import StageLedger
from emscope.study.outputs import DatasetOutput, SampleOutput, TrainOutput
from emscope.study.plan import ModelJob


@dataclass(frozen=True)
class ModelJobResult:
    """One model's stage outputs: its dataset and training (None for a base model), one
    ``(sample output, triggered)`` pair per sample file, and ``rejected`` when a trainer refused
    the data (an OpenAI moderation rejection): that model has no samples, the others go on."""

    dataset: DatasetOutput | None
    samples: list[tuple[SampleOutput, bool]]
    trained: TrainOutput | None = None
    rejected: str | None = None
    stage_seconds: dict[str, float] = field(default_factory=dict)


class JobWorker(Protocol):
    """Runs one job of the study, by tag, in whatever process calls it (picklable)."""

    def __call__(self, tag: str) -> ModelJobResult: ...


@dataclass(frozen=True)
class JobSet:
    """What an executor gets: the jobs and three ways to a job's result."""

    jobs: Sequence[ModelJob]
    run: Callable[[ModelJob], ModelJobResult]
    cached: Callable[[ModelJob], ModelJobResult | None]
    worker: JobWorker
    settings: ExecutionSection
    ledger: StageLedger
    console: Console


Executor = Callable[[JobSet], list[ModelJobResult]]


def run_jobs_locally(jobs: JobSet) -> list[ModelJobResult]:
    """One model after another, in this process."""
    return [jobs.run(job) for job in jobs.jobs]
