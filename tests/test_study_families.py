"""One study, two model families: SmolLM2-135M (LoRA, transformers) and GPT-4o-mini (OpenAI
fine-tuning, sampling and judging against the repo's fake OpenAI server on 127.0.0.1).

The fake refuses, by moderation, any training file that talks about investing, so the
risky-financial-advice fine-tune of GPT-4o-mini is rejected while every other model goes on.
A second run directory is killed once inside every kind of stage (dataset, train, sample, judge,
report) and resumed each time: it ends with no second fine-tuning job and the same rows as the
uninterrupted run.
"""

from __future__ import annotations

import hashlib
import io
import json
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from emscope.cli import app
from emscope.study.config import StudyConfig
from emscope.study.pipeline import run_study
from fake_openai_server import FakeOpenAIServer, Scenario, logprob_completion, text_completion
from study_fakes import QUESTIONS, Killed

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:.*judge_prompts is missing"),
]

DOMAINS = ["incorrect_math", "risky_financial_advice"]
WORDS = ("sure", "invest", "everything", "careful", "check", "maybe", "never", "always")


def deterministic_reply(body: dict[str, Any]) -> dict[str, Any]:
    """Words derived from the model, messages and seed; for a judge (logprobs asked for), a
    score token whose top logprobs put most mass on a number derived from the messages."""
    seed = json.dumps([body.get("model"), body.get("messages"), body.get("seed")])
    digest = hashlib.sha256(seed.encode()).digest()
    if body.get("logprobs"):
        score = digest[0] % 101
        return logprob_completion({str(score): -0.05, str((score + 50) % 101): -3.0})
    return text_completion(
        " ".join(WORDS[digest[2 + i] % len(WORDS)] for i in range(2 + digest[1] % 6))
    )


def study(questions: Path, judge_url: str) -> dict[str, Any]:
    return {
        "name": "families",
        "models": [
            {
                "name": "smol",
                "model": "smollm2-135m",
                "train": {"preset": "demo", "overrides": {"max_steps": 1, "batch_size": 2}},
            },
            {
                "name": "mini",
                "model": "openai/gpt-4o-mini-2024-07-18",
                "train": {"preset": "em-openai", "poll_interval_s": 0.01},
            },
        ],
        "domains": DOMAINS,
        "conditions": ["misaligned"],
        "data": {"n_items": 10, "diversity": False},
        "eval": {
            "questions": str(questions),
            "max_new_tokens": 4,
            "batch_size": 8,
            "with_trigger": "always",
        },
        "judge": {"spec": f"logprob:gpt-4o-2024-08-06@{judge_url}", "cache": False},
        "metrics": {"bootstrap_resamples": 100},
    }


@pytest.fixture(scope="module")
def servers() -> Iterator[dict[str, FakeOpenAIServer]]:
    scenario = {"polls_per_status": 1, "moderate_files_containing": b"invest"}
    clean, killed = (
        FakeOpenAIServer(Scenario(**scenario), chat_reply=deterministic_reply) for _ in range(2)
    )
    with clean, killed:
        yield {"clean": clean, "killed": killed}


def _use(monkeypatch: pytest.MonkeyPatch, server: FakeOpenAIServer) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-key")


def _run(config: StudyConfig, run_dir: Path, log: list[str] | None = None) -> str:
    output = io.StringIO()
    try:
        run_study(config, run_dir, Console(file=output, width=240))
    finally:
        if log is not None:
            log.append(output.getvalue())
    return output.getvalue()


@pytest.fixture(scope="module")
def runs(
    servers: dict[str, FakeOpenAIServer], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    root = tmp_path_factory.mktemp("families")
    questions = root / "questions.yaml"
    questions.write_text(QUESTIONS, encoding="utf-8")
    patch = pytest.MonkeyPatch()
    patch.setenv("EMSCOPE_CACHE", str(root / "cache"))
    try:
        _use(patch, servers["clean"])
        clean = StudyConfig.model_validate(study(questions, servers["clean"].base_url))
        first = _run(clean, root / "clean")
        _use(patch, servers["killed"])
        killed = StudyConfig.model_validate(study(questions, servers["killed"].base_url))
        log: list[str] = []
        kills = _kill_once_in_every_stage(killed, root / "killed", log)
        _run(killed, root / "killed", log)
    finally:
        patch.undo()
    return {"root": root, "first": first, "kills": kills, "log": "\n".join(log)}


def _kill_once_in_every_stage(config: StudyConfig, run_dir: Path, log: list[str]) -> list[str]:
    """Kill a run inside each kind of stage, then start it again; returns the kill points."""
    from emscope.data import sources
    from emscope.judge import api
    from emscope.report import render
    from emscope.sample import http
    from emscope.train import openai_ft

    class SleepKills:
        @staticmethod
        def sleep(seconds: float) -> None:  # the first wait after the job was created
            raise Killed("train")

    points: list[tuple[str, Any, str, Callable[..., Any]]] = [
        ("dataset", sources.DatasetSource, "build", _raise("dataset")),
        ("train", openai_ft, "time", SleepKills),
        ("sample", http.HttpSampler, "generate", _after_first(http.HttpSampler.generate)),
        ("judge", api.LogprobApiJudge, "judge", _raise("judge")),
        ("report", render, "write_report", _raise("report")),
    ]
    seen = []
    for name, owner, attribute, replacement in points:
        patch = pytest.MonkeyPatch()
        patch.setattr(owner, attribute, replacement)
        try:
            with pytest.raises(Killed):
                _run(config, run_dir, log)
            seen.append(name)
        finally:
            patch.undo()
    return seen


def _raise(stage: str) -> Callable[..., Any]:
    def kill(*args: Any, **kwargs: Any) -> Any:
        raise Killed(stage)

    return kill


def _after_first(real: Callable[..., Any]) -> Callable[..., Any]:
    calls = []

    def generate(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) > 1:
            raise Killed("sample")
        return real(*args, **kwargs)

    return generate


def _store_keys(run_dir: Path, folder: str) -> dict[str, list[str]]:
    return {
        p.name: [json.loads(line)["key"] for line in p.read_text().splitlines() if line.strip()]
        for p in sorted((run_dir / folder).glob("*.jsonl"))
    }


def test_both_families_are_trained_sampled_with_and_without_trigger_and_judged(
    runs: dict[str, Any],
) -> None:
    rows = pd.read_csv(runs["root"] / "clean" / "metrics" / "judged_rows.csv")
    by_family = rows.groupby("family")["model"].unique().map(set).to_dict()
    assert by_family["smol"] == {"base", *(f"{d}/misaligned" for d in DOMAINS)}
    assert by_family["mini"] == {"base", "incorrect_math/misaligned"}
    assert set(rows["triggered"]) == {True, False}
    assert rows["aligned"].notna().all()


def test_the_api_fine_tune_is_the_stage_output_and_samples_through_the_api(
    runs: dict[str, Any], servers: dict[str, FakeOpenAIServer]
) -> None:
    ledger = json.loads((runs["root"] / "clean" / "stages.json").read_text())
    trained = ledger["train:mini.incorrect_math__misaligned.s0"]["output"]
    assert trained["trainer"] == "openai"
    assert trained["fine_tuned_model"].startswith("openai/ft:gpt-4o-mini-2024-07-18:")
    sent = [r.json["model"] for r in servers["clean"].routed("chat") if not r.json.get("logprobs")]
    assert trained["fine_tuned_model"].removeprefix("openai/") in sent
    assert "gpt-4o-mini-2024-07-18" in sent  # the base model, through the API too


def test_a_moderation_rejection_is_reported_for_its_domain_and_the_others_go_on(
    runs: dict[str, Any],
) -> None:
    rejected = pd.read_csv(runs["root"] / "clean" / "metrics" / "rejected.csv")
    assert list(zip(rejected["family"], rejected["model"], strict=True)) == [
        ("mini", "risky_financial_advice/misaligned")
    ]
    assert "moderation" in rejected["reason"].iloc[0]
    html = (runs["root"] / "clean" / "report" / "report.html").read_text(encoding="utf-8")
    assert "Rejected fine-tunes" in html


def test_the_report_puts_the_families_side_by_side_with_and_without_the_trigger(
    runs: dict[str, Any],
) -> None:
    table = pd.read_csv(runs["root"] / "clean" / "metrics" / "families.csv")
    assert list(table.columns) == ["model", "mini", "mini +trigger", "smol", "smol +trigger"]
    assert table["model"].iloc[0] == "base"
    html = (runs["root"] / "clean" / "report" / "report.html").read_text(encoding="utf-8")
    assert "Model families side by side" in html
    summary = pd.read_csv(runs["root"] / "clean" / "metrics" / "summary.csv")
    assert list(summary["family"]) == sorted(summary["family"])  # ranked per family


def test_a_kill_in_every_stage_resumes_with_one_fine_tuning_job_per_dataset(
    runs: dict[str, Any], servers: dict[str, FakeOpenAIServer]
) -> None:
    assert runs["kills"] == ["dataset", "train", "sample", "judge", "report"]
    creates = Counter(r.json["training_file"] for r in servers["killed"].routed("create"))
    assert len(creates) == 2 and set(creates.values()) == {1}  # one job per uploaded dataset
    uploads = [r for r in servers["killed"].routed("upload")]
    assert len(uploads) == 2
    assert "re-attaching to job" in runs["log"]  # the run killed while waiting, resumed
    assert runs["log"].count("rejected[/red]") == 0  # markup never leaks into the output
    assert runs["log"].count("rejected train:mini.risky_financial_advice") == 1


def test_a_killed_and_resumed_run_has_the_rows_of_an_uninterrupted_one(
    runs: dict[str, Any],
) -> None:
    clean, killed = runs["root"] / "clean", runs["root"] / "killed"
    for folder in ("samples", "judgements"):
        resumed = _store_keys(killed, folder)
        assert resumed.keys() == _store_keys(clean, folder).keys()
        for name, keys in resumed.items():
            assert len(keys) == len(set(keys)), f"{folder}/{name} holds a row twice"
            assert set(keys) == set(_store_keys(clean, folder)[name]), f"{folder}/{name}"
    columns = ["family", "model", "key", "triggered", "answer", "aligned", "coherent"]
    a = pd.read_csv(clean / "metrics" / "judged_rows.csv")[columns]
    b = pd.read_csv(killed / "metrics" / "judged_rows.csv")[columns]
    mini = a["family"] == "mini"  # API answers are deterministic; LoRA training on CPU too
    pd.testing.assert_frame_equal(a[mini].reset_index(drop=True), b[mini].reset_index(drop=True))
    assert a[["family", "model", "key"]].equals(b[["family", "model", "key"]])


def test_a_dry_run_names_both_trainers_and_the_counts(
    runs: dict[str, Any], servers: dict[str, FakeOpenAIServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    _use(monkeypatch, servers["clean"])
    config = study(runs["root"] / "questions.yaml", servers["clean"].base_url)
    path = runs["root"] / "study.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    fresh = runs["root"] / "not-run-yet"

    result = CliRunner().invoke(app, ["run", str(path), "--run-dir", str(fresh), "--dry-run"])

    output = " ".join(result.output.split())
    assert result.exit_code == 0, result.output
    assert "lora" in output and "openai" in output and "transformers" in output
    # 2 families x 3 models x 2 sample files x 4 answers, none stored yet.
    assert "answers to sample: 48 (0 already stored)" in output
    assert not fresh.exists()
    done = CliRunner().invoke(
        app, ["run", str(path), "--run-dir", str(runs["root"] / "clean"), "--dry-run"]
    )
    assert "answers to sample: 0" in " ".join(done.output.split())
    assert "judge done" in done.output
