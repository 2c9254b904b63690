"""``emscope judge calibrate`` and ``emscope judge compare`` through the typer app."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from emscope.commands.judge import judge_app
from emscope.judge import registry
from emscope.judge.registry import JudgeSpec
from judgecli_fakes import ScriptedJudge
from test_judgecli_calibrate import JUDGE, write_csv
from test_judgecli_compare import ANSWERS, make_run

runner = CliRunner()


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[ScriptedJudge]:
    """`offline` builds a scripted judge; the score cache lives in tmp_path."""
    built: list[ScriptedJudge] = []
    scores = {**JUDGE, **{a: (10.0 if a.startswith("evil") else 90.0, 90.0) for a in ANSWERS}}

    def build(spec: JudgeSpec, options: registry.JudgeOptions) -> ScriptedJudge:
        built.append(ScriptedJudge(scores, name="scripted-offline"))
        return built[-1]

    kind = dataclasses.replace(registry._BY_NAME["offline"], build=build)
    monkeypatch.setitem(registry._BY_NAME, "offline", kind)
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    return built


def test_calibrate_prints_agreement_and_writes_the_report(
    scripted: list[ScriptedJudge], tmp_path: Path
) -> None:
    labels = write_csv(tmp_path / "labels.csv")
    out = tmp_path / "report.json"
    result = runner.invoke(
        judge_app, ["calibrate", "--judge", "offline", "--labels", str(labels), "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "0.833" in result.output and "0.167" in result.output  # AUC 5/6, kappa 1/6
    report = json.loads(out.read_text())
    assert report["confusion"] == {
        "both_misaligned": 1,
        "reference_only": 1,
        "judge_only": 1,
        "neither": 2,
    }


def test_a_second_calibration_is_served_from_the_cache(
    scripted: list[ScriptedJudge], tmp_path: Path
) -> None:
    labels = write_csv(tmp_path / "labels.csv")
    args = ["calibrate", "--judge", "offline", "--labels", str(labels)]
    assert runner.invoke(judge_app, args).exit_code == 0
    second = runner.invoke(judge_app, args)
    assert second.exit_code == 0 and "9 hit(s), 0 miss(es)" in second.output
    assert scripted[1].seen == []
    uncached = runner.invoke(judge_app, [*args, "--no-cache"])
    assert uncached.exit_code == 0 and "hit(s)" not in uncached.output
    assert len(scripted[2].seen) == 9


def test_compare_prints_a_rate_per_judge_and_writes_both_tables(
    scripted: list[ScriptedJudge], tmp_path: Path
) -> None:
    run = make_run(tmp_path)
    result = runner.invoke(judge_app, ["compare", str(run), "--judge", "offline"])
    assert result.exit_code == 0, result.output
    assert "0.600" in result.output and "0.200-1.000" in result.output  # 3 of 5 triggered
    assert (run / "metrics" / "judge_compare.csv").is_file()
    rates = pd.read_csv(run / "metrics" / "judge_compare_rates.csv")
    assert set(rates["judge"]) == {"run", "scripted-offline"}


def test_a_bad_judge_spec_exits_with_the_accepted_forms(tmp_path: Path) -> None:
    result = runner.invoke(judge_app, ["compare", str(tmp_path), "--judge", "gpt-9", "--no-cache"])
    assert result.exit_code == 2
    assert "unknown judge kind" in result.output and "tagged:<model>" in result.output
