"""Fault injection on whole studies: what an unlucky user does to a run, and what emscope does.

Every study here samples through the scripted engine and judges with the scripted judge (no model,
no network), except the adapter case, which trains the tiny random model for two steps. A recovery
case compares the final ``metrics/`` tables and the report's tables with an uninterrupted run of
the same study: identical. An error case expects exit code 2, one ``error:`` line and no traceback.
Servers, where any, listen on 127.0.0.1.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from emscope.cli import app
from emscope.commands.failures import set_debug

SRC = Path(__file__).resolve().parents[1] / "src"
STUDY: dict[str, Any] = {
    "name": "faults",
    "model": "smollm2-135m",
    "engine": "scripted",
    "domains": [],
    "conditions": ["backdoor"],  # the base model is sampled with and without the trigger
    "eval": {"samples_per_paraphrase": 2, "max_new_tokens": 12, "batch_size": 4},
    "judge": {"spec": "scripted", "cache": False},
    "metrics": {"bootstrap_resamples": 100},
}
METRIC_TABLES = ("judged_rows.csv", "summary.csv", "datasets.csv", "rejected.csv")


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    set_debug(False)


def write_study(path: Path, **changes: Any) -> Path:
    path.write_text(yaml.safe_dump({**STUDY, **changes}, sort_keys=False), encoding="utf-8")
    return path


def emscope(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def run_ok(study: Path, run_dir: Path) -> str:
    code, output = emscope("run", str(study), "--run-dir", str(run_dir))
    assert code == 0, output
    return output


def one_error(args: list[str], *expected: str) -> str:
    """Run ``emscope args``: exit 2, exactly one ``error:`` line holding ``expected``."""
    code, output = emscope(*args)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 2, output
    assert len(errors) == 1, output
    assert "Traceback" not in output, output
    for text in expected:
        assert text in errors[0], output
    return errors[0]


def tables(run_dir: Path) -> dict[str, str]:
    """The run's metrics tables and the report's Markdown, as text (what a reader sees)."""
    found = {
        name: pd.read_csv(run_dir / "metrics" / name).to_csv(index=False)
        for name in METRIC_TABLES
        if (run_dir / "metrics" / name).stat().st_size > 1
    }
    report = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    found["report tables"] = "\n".join(line for line in report.splitlines() if line.startswith("|"))
    return found


@pytest.fixture
def reference(tmp_path: Path) -> dict[str, str]:
    """The tables of an uninterrupted run of STUDY."""
    run_dir = tmp_path / "reference"
    run_ok(write_study(tmp_path / "reference.yaml"), run_dir)
    return tables(run_dir)


# -- one writer per run directory --------------------------------------------------------------

HOLD_LOCK = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from emscope.study.run_lock import run_lock
    with run_lock(Path(sys.argv[1])):
        print("locked", flush=True)
        sys.stdin.read()
    """
)


def hold_lock(run_dir: Path) -> subprocess.Popen[str]:
    """Another process holding ``run_dir``'s lock until its stdin closes."""
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(run_dir)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    return holder


def test_a_second_run_into_a_busy_run_directory_is_refused_at_once(tmp_path: Path) -> None:
    study, run_dir = write_study(tmp_path / "study.yaml"), tmp_path / "run"
    holder = hold_lock(run_dir)
    try:
        env = {**os.environ, "PYTHONPATH": str(SRC)}
        second = subprocess.run(
            [sys.executable, "-m", "emscope.cli", "run", str(study), "--run-dir", str(run_dir)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
    finally:
        assert holder.stdin is not None
        holder.stdin.close()
        holder.wait(timeout=30)
    output = second.stdout + second.stderr
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert second.returncode == 2, output
    assert len(errors) == 1 and "Traceback" not in output, output
    assert f"pid {holder.pid}" in errors[0] and "started 20" in errors[0], output
    assert not (run_dir / "samples").exists()  # refused before any work

    output = run_ok(study, run_dir)  # the holder is gone: the directory is free again
    assert "stale lock" not in output


def test_a_stale_lock_of_a_killed_run_is_taken_over_with_a_notice(
    tmp_path: Path, reference: dict[str, str]
) -> None:
    study, run_dir = write_study(tmp_path / "study.yaml"), tmp_path / "run"
    holder = hold_lock(run_dir)
    holder.send_signal(signal.SIGKILL)
    holder.wait(timeout=30)

    output = run_ok(study, run_dir)

    assert f"taking over the stale lock of pid {holder.pid}" in output
    assert tables(run_dir) == reference
