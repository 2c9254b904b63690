from __future__ import annotations

import pytest

from emscope.errors import InputError
from emscope.study.config import ExecutionSection
from emscope.study.ray_gpus import check_gpu_plan


def settings(gpus: float) -> ExecutionSection:
    return ExecutionSection(backend="ray", gpus_per_job=gpus)


def test_one_gpu_per_model_task_is_the_quiet_setting() -> None:
    assert check_gpu_plan(settings(1), 8) == []
    assert check_gpu_plan(settings(0), 0) == []  # a CPU cluster: nothing to warn about


def test_no_gpus_per_task_on_a_gpu_cluster_warns_that_training_would_run_on_cpu() -> None:
    (warning,) = check_gpu_plan(settings(0), 4)
    assert "4 GPUs" in warning and "on the CPU" in warning and "gpus_per_job: 1" in warning


def test_more_than_one_gpu_per_task_warns_that_the_others_sit_idle() -> None:
    (warning,) = check_gpu_plan(settings(2), 8)
    assert "idle" in warning


def test_more_gpus_per_task_than_the_cluster_has_is_an_input_error() -> None:
    with pytest.raises(InputError, match=r"execution\.gpus_per_job: 2 GPUs per model task"):
        check_gpu_plan(settings(2), 1)
