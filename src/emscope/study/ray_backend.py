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

from rich.markup import escape

from emscope.errors import InputError, ModelJobsFailed
from emscope.study.config import ExecutionSection
from emscope.study.execution import JobSet, JobWorker, ModelJobResult
from emscope.study.plan import ModelJob
from emscope.study.ray_gpus import check_gpu_plan

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


def run_jobs_on_ray(jobs: JobSet) -> list[ModelJobResult]:
    """Run the jobs the ledger does not hold as Ray tasks; results in the order of the jobs.

    A job that fails is reported once every other job has finished (and stored its stages), in a
    ``ModelJobsFailed`` naming each failed job's tag and error; a rerun resumes.
    """
    import_ray()  # a missing Ray is an input error before any work starts
    cached = {job.tag: r for job in jobs.jobs if (r := jobs.cached(job)) is not None}
    todo = [job for job in jobs.jobs if job.tag not in cached]
    if not todo:
        jobs.console.print(f"ray: all {len(jobs.jobs)} model jobs already done, nothing to submit")
        return [cached[job.tag] for job in jobs.jobs]
    jobs.console.print(
        f"ray: submitting {len(todo)} of {len(jobs.jobs)} model jobs ({len(cached)} already done)"
    )
    with ray_session(jobs.settings) as ray:
        finished = _run_tasks(ray, jobs, todo)
    jobs.ledger.reload()
    for result in finished.values():
        for stage, seconds in result.stage_seconds.items():
            jobs.ledger.timings[stage] = jobs.ledger.timings.get(stage, 0.0) + seconds
    results = {**cached, **finished}
    return [results[job.tag] for job in jobs.jobs]


def _run_tasks(
    ray: ModuleType, jobs: JobSet, todo: Sequence[ModelJob]
) -> dict[str, ModelJobResult]:
    settings, console = jobs.settings, jobs.console
    for warning in check_gpu_plan(settings, float(ray.cluster_resources().get("GPU", 0))):
        console.print(f"[yellow]warning[/yellow]: {escape(warning)}")
    task = ray.remote(run_worker_task)
    waiting = list(todo)
    running: dict[Any, ModelJob] = {}  # object ref -> its job
    results: dict[str, ModelJobResult] = {}
    failures: dict[str, str] = {}
    while waiting or running:
        while waiting and len(running) < (settings.max_parallel or len(todo)):
            job = waiting.pop(0)
            ref = task.options(
                num_cpus=settings.cpus_per_job,
                num_gpus=settings.gpus_per_job,
                name=f"emscope:{job.tag}",
            ).remote(jobs.worker, job.tag, settings.cpus_per_job)
            running[ref] = job
        ready, _ = ray.wait(list(running), num_returns=1)
        job = running.pop(ready[0])
        try:
            results[job.tag] = ray.get(ready[0])
        except ray.exceptions.RayError as exc:  # the task raised, or its worker died
            failures[job.tag] = _describe(exc)
            console.print(f"[red]failed[/red] {job.tag}: {escape(failures[job.tag])}")
        else:
            finished = len(results) + len(failures)
            console.print(f"[green]finished[/green] {job.tag} ({finished}/{len(todo)})")
    if failures:
        raise ModelJobsFailed(failures)
    return results


def run_worker_task(worker: JobWorker, tag: str, cpus: float) -> ModelJobResult:
    """The Ray task: quiet the libraries' live bars, pin torch's threads, run the job."""
    import torch
    from transformers.utils import logging as hf_logging

    # Ray sets OMP_NUM_THREADS to the task's CPUs; say the same to torch explicitly.
    torch.set_num_threads(max(1, int(cpus)))
    hf_logging.disable_progress_bar()  # Ray forwards output by line: live bars are only noise
    return worker(tag)


def check_shared_paths(run_dir: str, cwd: str) -> None:
    """An InputError when this node cannot see the run directory or the driver's cwd."""
    for path, what in ((run_dir, "run directory"), (cwd, "driver's working directory")):
        if not Path(path).is_dir():
            raise InputError(
                f"Ray worker on {socket.gethostname()} cannot see the study's {what}: "
                f"{SHARED_FILESYSTEM}",
                file=path,
            )


def _describe(exc: BaseException) -> str:
    cause = getattr(exc, "cause", None) or exc
    return f"{type(cause).__name__}: {cause}"
