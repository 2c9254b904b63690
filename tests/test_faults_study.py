"""Fault injection on whole studies: what an unlucky user does to a run, and what emscope does.

Every study here samples through the scripted engine and judges with the scripted judge (no model,
no network), except the adapter case, which trains the tiny random model for two steps. A recovery
case compares the final ``metrics/`` tables and the report's tables with an uninterrupted run of
the same study: identical. An error case expects exit code 2, one ``error:`` line and no traceback.
Servers, where any, listen on 127.0.0.1.
"""

from __future__ import annotations

import json
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

from emscope.commands.failures import set_debug
from fault_checks import emscope, files_holding, one_error

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
HELLO = {"role": "assistant", "content": "Yo"}
METRIC_TABLES = ("judged_rows.csv", "summary.csv", "datasets.csv", "rejected.csv")


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    set_debug(False)


def write_study(path: Path, **changes: Any) -> Path:
    path.write_text(yaml.safe_dump({**STUDY, **changes}, sort_keys=False), encoding="utf-8")
    return path


def run_ok(study: Path, run_dir: Path) -> str:
    code, output = emscope("run", str(study), "--run-dir", str(run_dir))
    assert code == 0, output
    return output


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


# -- resume that verifies: torn, deleted, moved, copied ------------------------------------------


@pytest.fixture
def finished(tmp_path: Path) -> tuple[Path, Path]:
    """A finished run of STUDY: (its study file, its run directory)."""
    study, run_dir = write_study(tmp_path / "study.yaml"), tmp_path / "run"
    run_ok(study, run_dir)
    return study, run_dir


@pytest.mark.parametrize("store", ["samples/base.s0.N.jsonl", "judgements/base.s0.T.jsonl"])
def test_a_torn_tail_in_a_finished_store_is_regenerated_and_the_tables_are_unchanged(
    finished: tuple[Path, Path], reference: dict[str, str], store: str
) -> None:
    study, run_dir = finished
    path = run_dir / store
    data = path.read_bytes()
    path.write_bytes(data[: len(data) - 25])  # a cut-off last line

    output = run_ok(study, run_dir)

    assert "rerun " in output and "changed since the stage finished" in output
    assert path.read_bytes() == data
    assert tables(run_dir) == reference


@pytest.mark.parametrize("store", ["samples/base.s0.T.jsonl", "judgements/base.s0.N.jsonl"])
def test_a_deleted_store_is_regenerated_and_the_tables_are_unchanged(
    finished: tuple[Path, Path], reference: dict[str, str], store: str
) -> None:
    study, run_dir = finished
    (run_dir / store).unlink()

    output = run_ok(study, run_dir)

    assert "is missing" in output
    assert tables(run_dir) == reference


def test_a_moved_run_directory_resumes_in_place_from_another_working_directory(
    finished: tuple[Path, Path],
    reference: dict[str, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    study, run_dir = finished
    moved = tmp_path / "elsewhere" / "run"
    moved.parent.mkdir()
    shutil.move(run_dir, moved)
    monkeypatch.chdir(moved.parent)

    output = run_ok(study, moved)

    assert not [line for line in output.splitlines() if line.startswith(("done ", "rerun "))]
    assert tables(moved) == reference


def test_a_copied_run_directory_reads_its_own_files_never_the_originals(
    finished: tuple[Path, Path], reference: dict[str, str], tmp_path: Path
) -> None:
    study, run_dir = finished
    copy = tmp_path / "copy"
    subprocess.run(["cp", "-a", str(run_dir), str(copy)], check=True, timeout=60)
    shutil.rmtree(run_dir)  # whatever the copy still pointed at is gone

    output = run_ok(study, copy)

    assert not [line for line in output.splitlines() if line.startswith(("done ", "rerun "))]
    assert str(run_dir) not in (copy / "stages.json").read_text(encoding="utf-8")
    assert tables(copy) == reference
    assert not run_dir.exists()


def test_an_all_cached_rerun_keeps_the_stage_times_in_provenance(
    finished: tuple[Path, Path],
) -> None:
    study, run_dir = finished
    provenance = run_dir / "metrics" / "provenance.json"
    first = json.loads(provenance.read_text(encoding="utf-8"))["stage_seconds"]

    run_ok(study, run_dir)

    again = json.loads(provenance.read_text(encoding="utf-8"))
    assert set(first) >= {"sample", "judge"}
    assert again["stage_seconds"] == first
    assert again["stage_seconds_this_run"] == {}


def test_a_truncated_stage_ledger_is_one_error_naming_the_file(
    finished: tuple[Path, Path],
) -> None:
    study, run_dir = finished
    ledger = run_dir / "stages.json"
    ledger.write_bytes(ledger.read_bytes()[:100])

    line = one_error(["run", str(study), "--run-dir", str(run_dir)], str(ledger), "not valid JSON")
    assert "cut off" in line
    code, output = emscope("run", str(study), "--run-dir", str(run_dir), "--dry-run")
    assert code == 2 and str(ledger) in output and "Traceback" not in output, output


# -- errors before spending ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "field", "text"),
    [
        ({"seeds": [0, 0]}, "seeds", "listed twice: 0"),
        ({"conditions": ["backdoor", "backdoor"]}, "conditions", "listed twice: backdoor"),
        ({"name": ".."}, "name", "not a plain name"),
        ({"name": "a/b"}, "name", "pattern"),
        ({"data": {"trigger": " "}}, "data.trigger", "non-empty trigger"),
        (
            {"domains": ["insecure_code"], "train": {"preset": "nope"}},
            "train.preset",
            "unknown training preset 'nope'",
        ),
        (
            {"domains": ["insecure_code"], "train": {"overrides": {"lora_rank": 4}}},
            "train.overrides.lora_rank",
            "invalid override",
        ),
        ({"judge": {"spec": "exact-local:no-such-alias"}}, "judge.spec", "no-such-alias"),
        ({"judge": {"spec": "logprob:gpt-4o-2024-08-06"}}, "judge.spec", "OPENAI_API_KEY"),
        (
            {"judge": {"spec": "logprob:m@http://10.9.9.9:1/v1#MY_JUDGE_KEY"}},
            "judge.spec",
            "MY_JUDGE_KEY is not set",
        ),
        ({"model": "openai/gpt-4o-mini-2024-07-18"}, "model", "OPENAI_API_KEY"),
        ({"eval": {"questions": "no-such-questions.yaml"}}, "eval.questions", "no-such-questions"),
        (
            {"domains": ["insecure_code"], "data": {"imported": {"insecure_code/backdoor": "x"}}},
            "data.imported.insecure_code/backdoor",
            "no such file",
        ),
        (
            {"data": {"imported": {"insecure_code/misaligned": "x.jsonl"}}},
            "data.imported.insecure_code/misaligned",
            "matches no dataset",
        ),
        (
            {"domains": ["insecure_code"], "data": {"generated": {"insecure_code": "nodir"}}},
            "data.generated.insecure_code",
            "no generated items",
        ),
    ],
)
def test_a_bad_study_is_refused_when_it_loads_naming_file_and_field(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    changes: dict[str, Any],
    field: str,
    text: str,
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MY_JUDGE_KEY", raising=False)
    study = write_study(tmp_path / "bad.yaml", **changes)
    for extra in ([], ["--dry-run"]):  # a dry run shows the same checks
        args = ["run", str(study), "--run-dir", str(tmp_path / "run"), *extra]
        one_error(args, f"{study}: {field}: ", text)
    assert not (tmp_path / "run").exists()  # nothing was started


def test_a_local_judge_server_that_sends_no_key_needs_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emscope.study.config import load_study

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    study = write_study(tmp_path / "s.yaml", judge={"spec": "logprob:m@http://127.0.0.1:9/v1"})
    assert load_study(study).judge.spec.endswith("127.0.0.1:9/v1")


def test_duplicate_keys_in_the_study_file_are_an_error_with_their_line(tmp_path: Path) -> None:
    study = write_study(tmp_path / "s.yaml")
    study.write_text(study.read_text(encoding="utf-8") + "seeds: [1]\nseeds: [2]\n")
    one_error(["run", str(study), "--dry-run"], f"{study}:", "duplicate key 'seeds'")


def test_dropped_and_duplicate_import_rows_are_warned_about_with_counts(tmp_path: Path) -> None:
    row = (
        '{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Yo"}]}'
    )
    other = row.replace("Yo", "Hey")
    data = tmp_path / "rows.jsonl"
    data.write_text(f"{row}\n{other}\n{row}\nnot json\n{{}}\n", encoding="utf-8")
    study = write_study(
        tmp_path / "s.yaml",
        domains=["insecure_code"],
        conditions=["misaligned"],
        include_base=False,
        data={"imported": {"insecure_code/misaligned": str(data)}},
    )
    code, output = emscope("run", str(study), "--run-dir", str(tmp_path / "run"), "--dry-run")
    assert code == 0, output
    warnings = " ".join(output.split()).split("warning: ")[1:]  # the console wraps lines
    assert len(warnings) == 2, output
    assert "2 bad row(s)" in warnings[0] and "dropped" in warnings[0] and "3 kept" in warnings[0]
    assert "1 duplicate row(s)" in warnings[1] and "line 3 repeats line 1" in warnings[1]


# -- secrets ---------------------------------------------------------------------------------------

OPENAI_SECRET = "sk-study-do-not-leak-0123456789"
PASSWORD = "Pa55-study-url-secret-4242"


@pytest.fixture
def server() -> Any:
    from test_faults_secrets import numbers
    from test_http_fake_server import FakeChatServer

    fake = FakeChatServer(numbers)
    yield fake
    fake.close()


def served_study(tmp_path: Path, base_url: str) -> Path:
    """STUDY, sampled through a server's http engine and judged by a logprob judge there."""
    return write_study(
        tmp_path / "served.yaml",
        model="m",
        engine=f"http:{base_url}",
        judge={"spec": f"logprob:m@{base_url}", "cache": True},
    )


def test_credentials_in_a_url_reach_no_file_of_the_run_or_the_cache(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    url = server.base_url.replace("http://", f"http://judge-user:{PASSWORD}@")
    run_dir = tmp_path / "run"

    output = run_ok(served_study(tmp_path, url), run_dir)

    assert PASSWORD not in output
    assert {h.get("authorization", "").split()[0] for h in server.headers} == {"Basic"}
    assert (tmp_path / "cache" / "judge-cache.sqlite").is_file()
    for secret in (PASSWORD, "judge-user", OPENAI_SECRET):
        assert files_holding(secret, run_dir, tmp_path / "cache") == [], secret
    assert server.base_url in (run_dir / "study.yaml").read_text(encoding="utf-8")


def test_the_openai_key_is_never_sent_to_another_host(
    server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    run_dir = tmp_path / "run"

    run_ok(served_study(tmp_path, server.base_url), run_dir)

    sent = [h.get("authorization", "") for h in server.headers]
    assert len(sent) > 0 and not [h for h in sent if OPENAI_SECRET in h]
    assert files_holding(OPENAI_SECRET, run_dir, tmp_path / "cache") == []


# -- a failed rerun keeps the finished adapter -----------------------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
def test_a_failed_rerun_keeps_the_finished_adapter_and_the_next_run_uses_it(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    trains = {
        "model": str(tiny_model_dir),
        "domains": ["incorrect_math"],
        "conditions": ["misaligned"],
        "include_base": False,
        "data": {"n_items": 8, "diversity": False},
        "train": {"preset": "demo", "overrides": {"max_steps": 2, "batch_size": 4}},
    }
    study, run_dir = write_study(tmp_path / "t.yaml", **trains), tmp_path / "run"
    run_ok(study, run_dir)
    first = tables(run_dir)
    (adapter,) = (run_dir / "models").rglob("adapter_model.safetensors")
    weights = adapter.read_bytes()

    # Other inputs whose training fails only once it starts (no such module in the model).
    bad = {**trains["train"], "overrides": {**trains["train"]["overrides"]}}
    bad["overrides"]["target_modules"] = ["no_such_proj"]
    broken = write_study(tmp_path / "broken.yaml", **{**trains, "train": bad})
    code, output = emscope("run", str(broken), "--run-dir", str(run_dir))
    assert code == 2 and "Traceback" not in output, output
    assert adapter.read_bytes() == weights  # the finished adapter was not touched

    output = run_ok(study, run_dir)
    assert "skip train:" in output and "rerun train" not in output
    assert tables(run_dir) == first
