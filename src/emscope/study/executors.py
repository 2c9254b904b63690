"""Execution backends by name (the study's ``execution.backend``): one table."""

from __future__ import annotations

from emscope.study.config import ExecutionSection
from emscope.study.execution import Executor, JobSet, ModelJobResult, run_jobs_locally


def _ray(jobs: JobSet) -> list[ModelJobResult]:
    from emscope.study.ray_backend import run_jobs_on_ray

    return run_jobs_on_ray(jobs)


EXECUTORS: dict[str, Executor] = {"local": run_jobs_locally, "ray": _ray}


def executor_for(settings: ExecutionSection) -> Executor:
    """The backend the study's ``execution`` section names."""
    return EXECUTORS[settings.backend]
