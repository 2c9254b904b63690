"""The stage ledger: finished stages survive several processes marking them at once."""

from __future__ import annotations

import json
import multiprocessing
from multiprocessing.synchronize import Barrier
from pathlib import Path

from emscope.study.ledger import StageLedger

STAGES_PER_WRITER = 100


def _mark_stages(run_dir: str, prefix: str, start: Barrier) -> None:
    ledger = StageLedger(Path(run_dir))
    start.wait()  # both writers mark at the same time
    for index in range(STAGES_PER_WRITER):
        ledger.mark_done(f"{prefix}:{index}", f"hash-{prefix}-{index}", 0.1, {"index": index})


def test_two_processes_marking_stages_at_once_lose_none(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(2)
    writers = [
        context.Process(target=_mark_stages, args=(str(tmp_path), prefix, start))
        for prefix in ("train", "sample")
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=60)
        assert writer.exitcode == 0

    entries = json.loads((tmp_path / "stages.json").read_text(encoding="utf-8"))
    expected = {f"{p}:{i}" for p in ("train", "sample") for i in range(STAGES_PER_WRITER)}
    assert set(entries) == expected
    assert entries["sample:7"]["output"] == {"index": 7}


def test_reload_sees_stages_another_ledger_marked(tmp_path: Path) -> None:
    driver, worker = StageLedger(tmp_path), StageLedger(tmp_path)
    worker.mark_done("train:a", "h1", 1.0, {"adapter_dir": "x"})
    assert not driver.is_done("train:a", "h1")

    driver.reload()

    assert driver.is_done("train:a", "h1")
    assert driver.output("train:a") == {"adapter_dir": "x"}


def test_marking_a_stage_keeps_the_stages_other_ledgers_marked(tmp_path: Path) -> None:
    first, second = StageLedger(tmp_path), StageLedger(tmp_path)
    first.mark_done("dataset:a", "h1", 1.0, {})
    second.mark_done("dataset:b", "h2", 1.0, {})

    assert set(StageLedger(tmp_path).entries) == {"dataset:a", "dataset:b"}
    assert set(second.entries) == {"dataset:a", "dataset:b"}
