"""Model memory is handed back between a study's jobs: no sampler outlives its job, and a LoRA
run releases its pages before the job samples."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from emscope.models import memory
from emscope.study import context, pipeline
from emscope.study.config import StudyConfig
from emscope.study.plan import plan_jobs


def test_release_memory_collects_and_trims(monkeypatch: pytest.MonkeyPatch) -> None:
    assert memory._malloc_trim() is not None  # the C library here and in CI is glibc
    trimmed: list[int] = []
    monkeypatch.setattr(memory, "_malloc_trim", lambda: trimmed.append)
    memory.release_memory()
    assert trimmed == [0]


def test_no_sampler_outlives_its_job(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    released: list[str] = []
    monkeypatch.setattr(memory, "release_memory", lambda: released.append("released"))
    config = StudyConfig.model_validate(
        {
            "name": "memory",
            "model": "smollm2-135m",
            "engine": "scripted",
            "domains": [],
            "conditions": ["backdoor"],
            "eval": {"samples_per_paraphrase": 1, "max_new_tokens": 4},
            "judge": {"spec": "scripted", "cache": False},
        }
    )
    ctx = context.RunContext(config, tmp_path / "run", Console(file=io.StringIO()))
    (job,) = plan_jobs(config)
    built: list[object] = []
    real_sampler = ctx.sampler

    def sampler(engine: str, ref: object) -> object:
        built.append(real_sampler(engine, ref))
        assert ctx._sampler is not None
        return built[-1]

    monkeypatch.setattr(ctx, "sampler", sampler)
    result = pipeline.run_model_job(ctx, job)
    assert len(result.samples) == 2 and len(built) == 2  # with and without the trigger
    assert built[0] is built[1]  # one model's two sample files share its sampler
    assert ctx._sampler is None and released == ["released"]
