"""The sample stage's cache key records how the engine seeds its answers: an old store sampled
with per-batch seeds is not resumed under per-row seeds, and the batch size is in the key exactly
for engines whose answers depend on it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from emscope.manifest import sha256_json
from emscope.sample.registry import ENGINES, Engine
from emscope.sample.seeding import BATCH_SEEDING, PER_ROW_SEEDING
from emscope.study.config import StudyConfig
from emscope.study.context import RunContext
from emscope.study.model_stages import SampleStage
from emscope.study.plan import ModelJob
from emscope.study.stage import cached_output


def stage(tmp_path: Path, engine: str | None = None, batch_size: int = 32) -> SampleStage:
    study: dict[str, Any] = {
        "name": "keys",
        "model": "smollm2-135m",
        "domains": [],
        "eval": {"samples_per_paraphrase": 1, "batch_size": batch_size},
        "judge": {"spec": "scripted", "cache": False},
    }
    if engine is not None:
        study["engine"] = engine
    config = StudyConfig.model_validate(study)
    ctx = RunContext(config, tmp_path / "run", Console(quiet=True), False)
    family = config.families()[0].name
    return SampleStage(ctx, ModelJob(None, None, 0, family), None, triggered=False)


def old_key(sample: SampleStage) -> str:
    """The key as the stage made it before it recorded the seeding scheme."""
    data = sample.inputs().model_dump(mode="json")
    for field in ("engine", "seeding", "batch_size"):
        if data.get(field) is None:
            data.pop(field, None)
    data.pop("seeding", None)
    return sha256_json(data)


def test_a_transformers_key_records_per_row_seeding_so_a_per_batch_store_is_not_resumed(
    tmp_path: Path,
) -> None:
    sample = stage(tmp_path)
    assert sample.inputs().seeding == PER_ROW_SEEDING
    assert sample.key() != old_key(sample)
    # A ledger entry made under the old (per-batch) key is not this stage's output.
    sample.ctx.ledger.mark_done(sample.name, old_key(sample), 1.0, {"path": "samples/x.jsonl"})
    assert sample.ctx.ledger.is_done(sample.name, old_key(sample))
    assert cached_output(sample.ctx, sample) is None


def test_with_per_row_seeds_the_batch_size_does_not_enter_the_key(tmp_path: Path) -> None:
    assert stage(tmp_path, batch_size=8).key() == stage(tmp_path, batch_size=256).key()
    assert stage(tmp_path).inputs().batch_size is None


def test_engines_whose_seeding_did_not_change_keep_their_key(tmp_path: Path) -> None:
    sample = stage(tmp_path, engine="scripted")
    assert sample.inputs().seeding is None
    assert sample.key() == old_key(sample)
    assert sample.key() == stage(tmp_path, engine="scripted", batch_size=4).key()


def test_an_engine_without_per_row_seeds_puts_the_batch_size_in_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    row = Engine(
        "batchy",
        "seeds each batch",
        ENGINES["scripted"].build,
        api_models=True,
        seeding=BATCH_SEEDING,
        per_row_seeds=False,
    )
    monkeypatch.setitem(ENGINES, "batchy", row)
    small, large = stage(tmp_path, "batchy", 8), stage(tmp_path, "batchy", 64)
    assert (small.inputs().batch_size, large.inputs().batch_size) == (8, 64)
    assert small.key() != large.key()


class _Reports:
    def __init__(self, info: dict[str, Any]) -> None:
        self._info = info

    def info(self) -> dict[str, Any]:
        return self._info


def test_a_sampler_that_seeds_otherwise_than_its_registry_row_is_refused(tmp_path: Path) -> None:
    sample = stage(tmp_path)
    sample.engine_row.check_seeding(_Reports({"seeding": PER_ROW_SEEDING}).info())
    with pytest.raises(RuntimeError, match="first-seed-per-batch"):
        sample.engine_row.check_seeding(
            _Reports({"seeding": BATCH_SEEDING, "per_row_seeds": False}).info()
        )
