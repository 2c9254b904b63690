"""Run a study: per family and job, dataset -> train -> sample (or, for a family with a shared
engine, dataset -> train per job and then every model's sampling through one engine); then
judge; then the enabled analyses; then the report. Every step is a cached, resumable stage
(:mod:`emscope.study.stage`).

>>> run_study(load_study("studies/demo.yaml"), Path("runs/demo"))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pandas as pd
import yaml
from rich.console import Console

from emscope.study.config import StudyConfig, stored_study
from emscope.study.context import RunContext
from emscope.study.execution import JobSet, ModelJobResult
from emscope.study.executors import executor_for
from emscope.study.judge_stage import JudgeStage, judged_frame
from emscope.study.model_stages import DatasetStage, SampleStage, TrainStage
from emscope.study.outputs import SampleOutput, StageOutput
from emscope.study.plan import ModelJob, plan_jobs
from emscope.study.stage import Stage, run_stage, trusted_output

OutputT = TypeVar("OutputT", bound=StageOutput)


def run_pipeline(ctx: RunContext) -> Path:
    """The whole study, in order; returns the report's HTML path."""
    from emscope.study.analysis_stages import run_analyses
    from emscope.study.report_stage import write_run_report
    from emscope.study.shared_sampling import sample_shared_families

    jobs = plan_jobs(ctx.config)
    results = executor_for(ctx.config.execution)(job_set(ctx, jobs))
    results = sample_shared_families(ctx, jobs, results)  # families sampling through one engine
    frames = [
        judged_frame(ctx, job, samples, run_stage(ctx, JudgeStage(ctx, job, samples, suffix)))
        for job, result in zip(jobs, results, strict=True)
        for samples, suffix in _sample_files(result)
    ]
    rows = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    sections = run_analyses(ctx, jobs, results, rows)
    return write_run_report(ctx, jobs, results, rows, sections)


class StageStep(Protocol):
    """Run a stage, or look it up: None means "not there" and ends the job's walk."""

    def __call__(self, stage: Stage[OutputT]) -> OutputT | None: ...


def model_job(ctx: RunContext, job: ModelJob, step: StageStep) -> ModelJobResult | None:
    """One model: dataset -> train -> sample (with and without the trigger where asked); a
    family with a shared engine samples later, all its models at once (``shared_sampling``)."""
    dataset = trained = None
    if not job.is_base:
        if (dataset := step(DatasetStage(ctx, job))) is None:
            return None
        if (trained := step(TrainStage(ctx, job, dataset))) is None:
            return None
        if trained.rejected:  # that domain is out; the other models go on
            return ModelJobResult(dataset, [], trained, rejected=trained.rejected)
    samples: list[tuple[SampleOutput, bool]] = []
    if ctx.families[job.family].shared:
        return ModelJobResult(dataset, samples, trained)
    for triggered in [False, True] if job.samples_with_trigger(ctx.config) else [False]:
        if (found := step(SampleStage(ctx, job, trained, triggered))) is None:
            return None
        samples.append((found, triggered))
    return ModelJobResult(dataset, samples, trained)


def run_model_job(ctx: RunContext, job: ModelJob) -> ModelJobResult:
    """Run one model's stages (each skipped when done); stage seconds spent are attached."""
    before = dict(ctx.ledger.timings)
    try:
        result = model_job(ctx, job, lambda stage: run_stage(ctx, stage))
    finally:
        ctx.release_sampler()  # the next job trains first: no model of this one stays loaded
    assert result is not None
    spent = {k: v - before.get(k, 0.0) for k, v in ctx.ledger.timings.items() if v != before.get(k)}
    return ModelJobResult(result.dataset, result.samples, result.trained, result.rejected, spent)


def cached_model_job(ctx: RunContext, job: ModelJob) -> ModelJobResult | None:
    """The job's result when the ledger holds all of its stages and their files check out (run
    nothing), else None."""
    return model_job(ctx, job, lambda stage: trusted_output(ctx, stage))


@dataclass(frozen=True)
class StudyWorker:
    """Runs one job by tag in another process (a Ray task): the study travels as JSON and the
    relative paths of the study file mean what they mean in the driver's working directory."""

    config: dict[str, Any]
    run_dir: str
    cwd: str

    def __call__(self, tag: str) -> ModelJobResult:
        from emscope.study.ray_backend import check_shared_paths

        check_shared_paths(self.run_dir, self.cwd)
        os.chdir(self.cwd)
        study = StudyConfig.model_validate(self.config)
        job = next(job for job in plan_jobs(study) if job.tag == tag)
        console = Console(highlight=False, soft_wrap=True)
        ctx = RunContext(study, Path(self.run_dir), console, progress_bars=False)
        return run_model_job(ctx, job)


def job_set(ctx: RunContext, jobs: list[ModelJob]) -> JobSet:
    worker = StudyWorker(
        ctx.config.model_dump(mode="json"), str(ctx.run_dir.resolve()), os.getcwd()
    )
    run: Callable[[ModelJob], ModelJobResult] = lambda job: run_model_job(ctx, job)  # noqa: E731
    return JobSet(
        jobs=jobs,
        run=run,
        cached=lambda job: cached_model_job(ctx, job),
        worker=worker,
        settings=ctx.config.execution,
        ledger=ctx.ledger,
        console=ctx.console,
    )


def _sample_files(result: ModelJobResult) -> list[tuple[Any, str]]:
    return [(samples, "T" if triggered else "N") for samples, triggered in result.samples]


def run_study(
    config: StudyConfig,
    run_dir: Path,
    console: Console | None = None,
    *,
    progress_bars: bool = True,
) -> Path:
    """Run (or resume) ``config`` into ``run_dir``; returns the report's HTML path."""
    from emscope.study.context import shutdown_warnings
    from emscope.study.run_lock import run_lock

    console = console or Console()
    for warning in shutdown_warnings(config):
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
    # One writer per run directory, for the whole run; Ray workers write under this lock.
    with run_lock(run_dir, lambda line: console.print(f"[yellow]notice:[/yellow] {line}")):
        (run_dir / "study.yaml").write_text(
            yaml.safe_dump(stored_study(config), sort_keys=False), encoding="utf-8"
        )
        ctx = RunContext(config, run_dir, console, progress_bars=progress_bars)
        return run_pipeline(ctx)
