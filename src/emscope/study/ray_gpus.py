"""How a study's Ray tasks use GPUs: one model (one adapter) per GPU with ``gpus_per_job: 1``.

Ray gives a task with ``num_gpus=1`` one GPU and hides the others (``CUDA_VISIBLE_DEVICES``), so
the task's training and sampling run on ``cuda:0``, its own GPU, in bf16. A task with
``num_gpus=0`` sees no GPU at all: Ray sets ``CUDA_VISIBLE_DEVICES`` to an empty string, so on a
GPU cluster the default ``gpus_per_job: 0`` would train every adapter on the CPU without a
word. :func:`check_gpu_plan` names such settings before anything is submitted.
"""

from __future__ import annotations

from emscope.errors import InputError
from emscope.study.config import ExecutionSection


def check_gpu_plan(settings: ExecutionSection, cluster_gpus: float) -> list[str]:
    """Warnings for a GPU setting that wastes or misses the cluster's GPUs (empty when fine).

    A setting no task could ever run with is an :class:`InputError`.

    >>> check_gpu_plan(ExecutionSection(backend="ray", gpus_per_job=1), 8)
    []
    """
    per_job = settings.gpus_per_job
    if per_job > cluster_gpus:
        raise InputError(
            f"{per_job:g} GPUs per model task but the Ray cluster has {cluster_gpus:g}: "
            "no model task could ever start",
            field="execution.gpus_per_job",
        )
    if cluster_gpus > 0 and per_job == 0:
        return [
            f"the Ray cluster has {cluster_gpus:g} GPUs but execution.gpus_per_job is 0, so every "
            "model would train and sample on the CPU (Ray hides GPUs from tasks that request "
            "none); set gpus_per_job: 1 for one model per GPU"
        ]
    if per_job > 1:
        return [
            f"execution.gpus_per_job is {per_job:g}: a model task trains in one process on one "
            "GPU, so the others would sit idle; use gpus_per_job: 1 (one model per GPU)"
        ]
    return []
