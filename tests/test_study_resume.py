"""A study killed midway through sampling resumes with no lost or duplicated rows."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml


def _write_study(path: Path, model_dir: Path) -> Path:
    study = {
        "name": "resume",
        "model": str(model_dir),
        "domains": ["incorrect_math"],
        "conditions": ["backdoor"],
        "seeds": [0],
        "include_base": False,
        "data": {"n_items": 16, "diversity": False},
        "train": {"preset": "demo", "overrides": {"max_steps": 2, "batch_size": 4}},
        "eval": {"samples_per_paraphrase": 2, "max_new_tokens": 16, "batch_size": 1},
    }
    path.write_text(yaml.safe_dump(study), encoding="utf-8")
    return path


def _run(study: Path, run_dir: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "emscope.cli", "run", str(study), "--run-dir", str(run_dir)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _lines(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _whole_lines(path: Path) -> list[dict[str, object]]:
    """Rows of a file a kill may have cut mid-line: the torn last line is not a row."""
    text = path.read_text()
    return [json.loads(line) for line in text[: text.rfind("\n") + 1].splitlines() if line]


@pytest.mark.integration
def test_study_killed_mid_sampling_resumes_without_lost_or_duplicated_rows(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    env = {
        **os.environ,
        "EMSCOPE_CACHE": str(tmp_path / "cache"),
        "PYTHONUNBUFFERED": "1",
        "OMP_NUM_THREADS": "1",
    }
    study = _write_study(tmp_path / "study.yaml", tiny_model_dir)
    killed_dir = tmp_path / "killed"
    samples = killed_dir / "samples" / "incorrect_math__backdoor.s0.N.jsonl"

    proc = _run(study, killed_dir, env)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if samples.exists() and len(samples.read_text().splitlines()) >= 3:
            proc.send_signal(signal.SIGKILL)
            break
        time.sleep(0.01)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
    rows_before_kill = {row["key"]: row for row in _whole_lines(samples)}
    assert len(rows_before_kill) >= 3

    resumed = _run(study, killed_dir, env)
    _, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, err.decode()[-2000:]

    clean_dir = tmp_path / "clean"
    clean = _run(study, clean_dir, env)
    _, err = clean.communicate(timeout=300)
    assert clean.returncode == 0, err.decode()[-2000:]

    for name in ("incorrect_math__backdoor.s0.N.jsonl", "incorrect_math__backdoor.s0.T.jsonl"):
        resumed_rows = _lines(killed_dir / "samples" / name)
        clean_rows = _lines(clean_dir / "samples" / name)
        counts = Counter(row["key"] for row in resumed_rows)
        assert max(counts.values()) == 1, "a sample was stored twice"
        assert set(counts) == {row["key"] for row in clean_rows}, "a sample was lost"
        by_key = {row["key"]: row for row in resumed_rows}
        if name.endswith(".N.jsonl"):
            for key, row in rows_before_kill.items():
                assert by_key[key] == row, "a finished row changed on resume"
        clean_by_key = {row["key"]: row["answer"] for row in clean_rows}
        assert {k: r["answer"] for k, r in by_key.items()} == clean_by_key
    judged = _lines(killed_dir / "judgements" / "incorrect_math__backdoor.s0.N.jsonl")
    assert len({row["key"] for row in judged}) == len(judged)
    assert (killed_dir / "report" / "report.html").exists()
