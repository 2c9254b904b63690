"""The Ray execution backend: each model of a study (dataset -> train -> sample) is one Ray task.

Select it in the study file (``execution: {backend: ray}``) or with ``emscope run --backend ray``.
With no ``address`` a private Ray instance starts on this machine's CPUs and stops when the jobs
are done; with ``address`` (``auto``, ``ray://host:10001``) the driver joins that cluster and only
disconnects from it at the end.

Workers write into the driver's run directory and resolve the study's relative paths against the
driver's working directory, so both must be on a filesystem every Ray node sees (one machine, NFS,
a shared volume), and every node needs emscope installed. Each worker marks its stages in the
run's ledger under a file lock; the driver then reloads the ledger and judges, analyses and
reports in its own process. Models whose stages the ledger already holds are not submitted.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.markup import escape

from emscope.errors import InputError, ModelJobsFailed
from emscope.study.config import ExecutionSection, StudyConfig
from emscope.study.execution import ModelJobResult
from emscope.study.plan import ModelJob, plan_jobs
from emscope.study.ray_gpus import check_gpu_plan
from emscope.study.runner import StudyRunner

RAY_INSTALL = "pip install 'emscope[ray]'"
SHARED_FILESYSTEM = "it must be on a filesystem every Ray node sees"


def import_ray() -> ModuleType:
    """Ray, or an ``InputError`` that says how to install it."""
    # Ray merges log lines that look alike across workers ("[repeated 2x across cluster]"), but
    # each worker's stage lines name another model and must all show. Ray reads this when it is
    # imported; the user's own value wins.
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    try:
        import ray
    except ImportError as exc:
        raise InputError(
            f"the ray backend needs Ray, which is not installed: {RAY_INSTALL} "
            "(or pip install 'ray>=2.40'), or set backend: local",
            field="execution.backend",
        ) from exc
    return ray


def ray_init_kwargs(settings: ExecutionSection) -> dict[str, Any]:
    """``ray.init`` arguments: join the cluster at ``address``, or start a private instance."""
    if settings.address is not None:
        return {"address": settings.address}
    # "local" starts a new instance even when `ray start` left one running on this machine.
    return {"address": "local", "num_cpus": os.cpu_count(), "include_dashboard": False}


@contextmanager
def ray_session(settings: ExecutionSection) -> Iterator[ModuleType]:
    """Ray, initialised for the study; a session the caller already opened is used as it is."""
    ray = import_ray()
    if ray.is_initialized():
        yield ray
        return
    ray.init(**ray_init_kwargs(settings))
    try:
        yield ray
    finally:
        # Stops a private instance; from a cluster this only disconnects the driver.
        ray.shutdown()


def run_jobs_on_ray(runner: StudyRunner, jobs: Sequence[ModelJob]) -> list[ModelJobResult]:
    """Run the jobs the ledger does not hold as Ray tasks; results in the order of ``jobs``.

    A job that fails is reported once every other job has finished (and stored its stages), in a
    ``ModelJobsFailed`` naming each failed job's tag and error; a rerun resumes.
    """
    import_ray()  # a missing Ray is an input error before any work starts
    cached = {job.tag: r for job in jobs if (r := runner.cached_model_job(job)) is not None}
    todo = [job for job in jobs if job.tag not in cached]
    if not todo:
        runner.console.print(f"ray: all {len(jobs)} model jobs already done, nothing to submit")
        return [cached[job.tag] for job in jobs]
    runner.console.print(
        f"ray: submitting {len(todo)} of {len(jobs)} model jobs ({len(cached)} already done)"
    )
    with ray_session(runner.config.execution) as ray:
        finished = _run_tasks(ray, runner, todo)
    runner.ledger.reload()
    for result in finished.values():
        for stage, seconds in result.stage_seconds.items():
            runner.ledger.timings[stage] = runner.ledger.timings.get(stage, 0.0) + seconds
    results = {**cached, **finished}
    return [results[job.tag] for job in jobs]


def _run_tasks(
    ray: ModuleType, runner: StudyRunner, jobs: Sequence[ModelJob]
) -> dict[str, ModelJobResult]:
    settings = runner.config.execution
    for warning in check_gpu_plan(settings, float(ray.cluster_resources().get("GPU", 0))):
        runner.console.print(f"[yellow]warning[/yellow]: {escape(warning)}")
    task = ray.remote(run_model_job_task)
    args = (runner.config.model_dump(mode="json"), str(runner.run_dir.resolve()), os.getcwd())
    waiting = list(jobs)
    running: dict[Any, ModelJob] = {}  # object ref -> its job
    results: dict[str, ModelJobResult] = {}
    failures: dict[str, str] = {}
    while waiting or running:
        while waiting and len(running) < (settings.max_parallel or len(jobs)):
            job = waiting.pop(0)
            ref = task.options(
                num_cpus=settings.cpus_per_job,
                num_gpus=settings.gpus_per_job,
                name=f"emscope:{job.tag}",
            ).remote(*args, job.tag)
            running[ref] = job
        ready, _ = ray.wait(list(running), num_returns=1)
        job = running.pop(ready[0])
        try:
            results[job.tag] = ray.get(ready[0])
        except ray.exceptions.RayError as exc:  # the task raised, or its worker died
            failures[job.tag] = _describe(exc)
            runner.console.print(f"[red]failed[/red] {job.tag}: {escape(failures[job.tag])}")
        else:
            finished = len(results) + len(failures)
            runner.console.print(f"[green]finished[/green] {job.tag} ({finished}/{len(jobs)})")
    if failures:
        raise ModelJobsFailed(failures)
    return results


def run_model_job_task(config: dict[str, Any], run_dir: str, cwd: str, tag: str) -> ModelJobResult:
    """The Ray task: rebuild the study from its JSON config and run one model's stages."""
    import torch
    from transformers.utils import logging as hf_logging

    for path, what in ((run_dir, "run directory"), (cwd, "driver's working directory")):
        if not Path(path).is_dir():
            raise InputError(
                f"Ray worker on {socket.gethostname()} cannot see the study's {what}: "
                f"{SHARED_FILESYSTEM}",
                file=path,
            )
    os.chdir(cwd)  # relative paths in the study file mean what they mean to the driver
    study = StudyConfig.model_validate(config)
    # Ray sets OMP_NUM_THREADS to the task's CPUs; say the same to torch explicitly.
    torch.set_num_threads(max(1, int(study.execution.cpus_per_job)))
    job = next(job for job in plan_jobs(study) if job.tag == tag)
    hf_logging.disable_progress_bar()  # Ray forwards output by line: live bars are only noise
    console = Console(highlight=False, soft_wrap=True)
    return StudyRunner(study, Path(run_dir), console, progress_bars=False).run_model_job(job)


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}"
