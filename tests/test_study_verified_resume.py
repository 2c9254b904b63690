"""A finished stage is trusted only while its files match the ledger: a deleted or torn store
reruns its stage (regenerating the rows, never dropping them), and a moved run resumes in place.

The study samples through the shipped scripted engine and judges with the scripted judge, so it
needs no model and every rerun must reproduce the first run exactly.
"""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

from emscope.study.config import StudyConfig
from emscope.study.pipeline import run_study

STUDY = {
    "name": "verified",
    "model": "smollm2-135m",
    "engine": "scripted",
    "domains": [],
    "conditions": ["backdoor"],  # the base model is sampled with and without the trigger
    "eval": {"samples_per_paraphrase": 3, "max_new_tokens": 12, "batch_size": 4},
    "judge": {"spec": "scripted", "cache": False},
    "metrics": {"bootstrap_resamples": 100},
}


def _run(run_dir: Path) -> str:
    output = io.StringIO()
    run_study(StudyConfig.model_validate(STUDY), run_dir, Console(file=output, width=200))
    return output.getvalue()


def _rows(run_dir: Path) -> pd.DataFrame:
    return pd.read_csv(run_dir / "metrics" / "judged_rows.csv")


@pytest.fixture
def finished(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    _run(run_dir)
    return run_dir


def test_a_deleted_store_reruns_its_stage_and_the_results_are_unchanged(finished: Path) -> None:
    before = _rows(finished)
    (finished / "samples" / "base.s0.T.jsonl").unlink()

    output = _run(finished)

    assert "rerun sample:base.s0.T: its store" in output and "is missing" in output
    assert "skip sample:base.s0.N (done)" in output
    pd.testing.assert_frame_equal(_rows(finished), before)


def test_a_torn_tail_of_a_finished_store_is_regenerated_not_dropped(finished: Path) -> None:
    before = _rows(finished)
    store = finished / "samples" / "base.s0.N.jsonl"
    data = store.read_bytes()
    store.write_bytes(data[: len(data) - 40])  # a cut-off last line

    output = _run(finished)

    assert "rerun sample:base.s0.N: its store" in output and "changed" in output
    assert store.read_bytes() == data
    pd.testing.assert_frame_equal(_rows(finished), before)


def test_a_moved_run_directory_resumes_in_place(finished: Path, tmp_path: Path) -> None:
    before = _rows(finished)
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(finished, moved)

    output = _run(moved)

    assert not [line for line in output.splitlines() if line.startswith(("done ", "rerun "))]
    pd.testing.assert_frame_equal(_rows(moved), before)
