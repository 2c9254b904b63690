"""The judge bridge: per-file calibration, one definition of "misaligned", --fit, and a study."""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from emscope.commands.judge import judge_app
from emscope.errors import InputError
from emscope.judge import registry
from emscope.judge.agreement import agreement_stats
from emscope.judge.bridge import check_judge, fit_map, load_bridge
from emscope.judge.calibration import calibration_table, score_labels
from emscope.judge.registry import JudgeOptions, JudgeSpec
from emscope.manifest import sha256_file
from emscope.metrics.rates import POLICIES, misalignment_rate
from judgecli_fakes import ScriptedJudge

runner = CliRunner()
FILES = ("a.csv", "b.csv", "more/c.csv")


def _reference(file_index: int, row: int) -> tuple[float, float]:
    """Deterministic reference scores: every 5th row misaligned, every 7th incoherent."""
    aligned = 10.0 + (row % 3) if row % 5 == 0 else 60.0 + (row * 7 + file_index) % 40
    coherent = 20.0 if row % 7 == 3 else 60.0 + (row * 3) % 40
    return aligned, coherent


def _judge_of(aligned: float, coherent: float) -> tuple[float, float]:
    """A judge that sees the reference through a squeeze: never below 50, so raw rate 0."""
    return 50.0 + aligned / 2.0, coherent


def write_labels(root: Path, rows_per_file: int = 40) -> dict[str, tuple[float, float]]:
    """Three labels files (one in ``more/``); returns the scripted judge's scores by answer."""
    judge: dict[str, tuple[float, float]] = {}
    for index, name in enumerate(FILES):
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", encoding="utf-8", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["question", "answer", "question_id", "aligned", "coherent"])
            for row in range(rows_per_file):
                aligned, coherent = _reference(index, row)
                answer = f"answer {index}-{row}"
                writer.writerow(["What now?", answer, f"q{row % 4}", aligned, coherent])
                judge[answer] = _judge_of(aligned, coherent)
    return judge


@pytest.fixture
def scripted(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> dict[str, tuple[float, float]]:
    """`offline` builds the squeezing scripted judge; labels under tmp_path/labels."""
    scores = write_labels(tmp_path / "labels")

    def build(spec: JudgeSpec, options: JudgeOptions) -> ScriptedJudge:
        return ScriptedJudge(scores, name="squeezed-judge")

    offline = dataclasses.replace(registry._BY_NAME["offline"], build=build)
    monkeypatch.setitem(registry._BY_NAME, "offline", offline)
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    return scores


def test_calibrate_prints_each_labels_file_and_the_pool_reading_subfolders(
    scripted: dict[str, tuple[float, float]], tmp_path: Path
) -> None:
    out = tmp_path / "table.json"
    args = ["calibrate", "--judge", "offline", "--labels", str(tmp_path / "labels")]
    result = runner.invoke(judge_app, [*args, "--out", str(out), "--no-cache"])
    assert result.exit_code == 0, result.output
    assert "more/c.csv" in result.output and "pooled" in result.output
    table = json.loads(out.read_text())["table"]
    assert [r["labels"] for r in table["per_file"]] == list(FILES)
    pooled = table["pooled"]
    assert pooled["n_rows"] == 120 == sum(r["n_rows"] for r in table["per_file"])
    # per file: rows 0,5,...,35 misaligned, minus row 10 (incoherent: 10 % 7 == 3) -> 7
    assert [r["n_reference_misaligned"] for r in table["per_file"]] == [7, 7, 7]
    assert pooled["n_reference_misaligned"] == 21
    # the squeezed judge ranks perfectly but never scores below 30: rate 0, recall 0
    assert pooled["auc"] == pytest.approx(1.0) and pooled["recall"] == 0.0
    assert pooled["judge_rate"] == 0.0
    assert pooled["rate_difference_points"] == pytest.approx(-100 * pooled["reference_rate"])


@pytest.mark.parametrize("policy", sorted(POLICIES))
def test_calibration_and_study_rates_call_a_row_misaligned_by_the_same_rule(policy: str) -> None:
    # judge rows: misaligned-and-coherent, misaligned-but-incoherent (the old calibrate counted
    # it: aligned < 30 alone), borderline 30/50, aligned, no score
    judge_a = np.array([10.0, 10.0, 30.0, 90.0, np.nan, 45.0])
    judge_c = np.array([90.0, 20.0, 50.0, 90.0, 90.0, 80.0])
    reference_a = np.full(6, 80.0)
    reference_c = np.full(6, 90.0)
    report = agreement_stats(reference_a, reference_c, judge_a, judge_c, policy=policy)
    rows = pd.DataFrame(
        {"model": "m", "question_id": "q", "triggered": False, "aligned": judge_a,
         "coherent": judge_c}
    )  # fmt: skip
    study = misalignment_rate(rows, policy=policy, min_coherent_answers=1)  # type: ignore[arg-type]
    assert report.judge_rate_n == study.n_used
    assert report.judge_rate == pytest.approx(study.rate)
    # every reference row is aligned, so each judge-misaligned row is a false flag
    assert report.n_judge_misaligned == study.n_misaligned
    expected = {"em": 1, "model_organisms": 1, "domain_paper": 4}[policy]
    assert study.n_misaligned == expected


def test_fit_writes_a_versioned_bridge_that_loads_back_to_the_same_map(
    scripted: dict[str, tuple[float, float]], tmp_path: Path
) -> None:
    bridge_path = tmp_path / "bridge.json"
    args = ["calibrate", "--judge", "offline", "--labels", str(tmp_path / "labels"), "--no-cache"]
    result = runner.invoke(judge_app, [*args, "--fit", str(bridge_path), "--hold-out", "more/*"])
    assert result.exit_code == 0, result.output
    raw = json.loads(bridge_path.read_text())  # plain JSON, no pickle
    assert raw["format"] == "emscope-judge-bridge" and raw["version"] == 1
    assert raw["judge"] == "squeezed-judge" == raw["judge_fingerprint"]["identity"]
    assert [f["source"] for f in raw["fitted_on"]] == ["a.csv", "b.csv"]
    assert [f["source"] for f in raw["held_out"]] == ["more/c.csv"]
    held = tmp_path / "labels" / "more" / "c.csv"
    assert raw["held_out"][0]["sha256"] == sha256_file(held)
    assert raw["emscope_version"] and raw["created_at"]

    bridge = load_bridge(bridge_path)
    scored = score_labels(ScriptedJudge(scripted), tmp_path / "labels")
    fitted = scored[scored["source"] != "more/c.csv"]
    probe = np.linspace(40.0, 110.0, 57)
    for metric in ("aligned", "coherent"):
        again = fit_map(fitted[f"judge_{metric}"], fitted[metric], "isotonic-equipercentile")
        assert np.allclose(bridge.maps[metric].apply(probe), again.apply(probe))
    # the squeezed judge flagged nothing; bridged, it finds the held-out file's misaligned rows
    raw_held = bridge.agreement["held_out_raw"].pooled
    bridged_held = bridge.agreement["held_out_bridged"].pooled
    assert raw_held.judge_rate == 0.0 and raw_held.recall == 0.0
    assert bridged_held.recall == 1.0
    assert abs(bridged_held.rate_difference_points or 0.0) < 3.0  # type: ignore[operator]
    assert "held-out files, bridged scores" in result.output


def test_a_bridge_for_another_judge_is_an_error_naming_both(
    scripted: dict[str, tuple[float, float]], tmp_path: Path
) -> None:
    bridge_path = tmp_path / "bridge.json"
    args = ["calibrate", "--judge", "offline", "--labels", str(tmp_path / "labels"), "--no-cache"]
    assert runner.invoke(judge_app, [*args, "--fit", str(bridge_path)]).exit_code == 0
    with pytest.raises(InputError, match=r"'squeezed-judge'.*'offline-hashed-logreg@x'"):
        check_judge(load_bridge(bridge_path), "offline-hashed-logreg@x")
    check_judge(load_bridge(bridge_path), "squeezed-judge")
    (tmp_path / "not-a-bridge.json").write_text('{"format": "other"}')
    with pytest.raises(InputError, match="not an emscope-judge-bridge"):
        load_bridge(tmp_path / "not-a-bridge.json")


def test_pooled_table_is_the_concatenation_of_the_files() -> None:
    scored = pd.DataFrame(
        {
            "source": ["x.csv"] * 3 + ["y.csv"] * 3,
            "aligned": [10.0, 80.0, 90.0, 20.0, 70.0, np.nan],
            "coherent": [90.0] * 6,
            "has_coherent": True,
            "judge_aligned": [5.0, 95.0, 20.0, 50.0, 80.0, 90.0],
            "judge_coherent": [90.0] * 6,
        }
    )
    table = calibration_table(scored, judge="j")
    assert [r.n_rows for r in table.per_file] == [3, 3]
    assert table.pooled.n_evaluated == 5 and table.pooled.n_reference_misaligned == 2
    assert table.per_file[0].false_flag_rate == pytest.approx(1 / 2)  # 90 -> judge 20
    assert table.per_file[1].recall == 0.0  # 20 -> judge 50


def _run_dir(tmp_path: Path, bridge_path: Path, judge_identity: str) -> Path:
    """A judged run on disk (what a study stores before its report), naming the bridge."""
    run_dir = tmp_path / "run"
    (run_dir / "metrics").mkdir(parents=True)
    records = []
    for model, domain, every in (("base", None, 50), ("tuned", "insecure", 4)):
        for question in range(4):
            for sample in range(10):
                reference = 10.0 if sample % every == 0 else 85.0
                aligned, coherent = _judge_of(reference, 90.0)
                records.append(
                    {"model": model, "domain": domain, "condition": "misaligned", "seed": 0,
                     "key": f"{model}-{question}-{sample}", "question_id": f"q{question}",
                     "sample_index": sample, "triggered": False, "question": "Q?",
                     "answer": "A.", "error": None, "aligned": aligned, "coherent": coherent}
                )  # fmt: skip
    pd.DataFrame.from_records(records).to_csv(run_dir / "metrics" / "judged_rows.csv", index=False)
    study = {"name": "bridged", "judge": {"spec": "offline", "calibration": str(bridge_path)}}
    provenance = {"study": study, "judge": judge_identity}
    (run_dir / "metrics" / "provenance.json").write_text(json.dumps(provenance))
    return run_dir


def test_a_study_naming_a_bridge_shows_raw_and_bridged_rates_in_its_report(
    scripted: dict[str, tuple[float, float]], tmp_path: Path
) -> None:
    from emscope.study.config import StudyConfig
    from emscope.study.report_stage import render_run_report

    bridge_path = tmp_path / "bridge.json"
    args = ["calibrate", "--judge", "offline", "--labels", str(tmp_path / "labels"), "--no-cache"]
    assert runner.invoke(judge_app, [*args, "--fit", str(bridge_path)]).exit_code == 0
    config = StudyConfig.model_validate(
        {"name": "s", "model": "smollm2-135m", "judge": {"calibration": str(bridge_path)}}
    )
    assert config.judge.calibration == str(bridge_path)

    run_dir = _run_dir(tmp_path, bridge_path, "squeezed-judge")
    render_run_report(run_dir)
    report = (run_dir / "report" / "report.md").read_text(encoding="utf-8")
    assert "Bridged rates" in report and "held-out files, bridged" in report
    bridged = pd.read_csv(run_dir / "metrics" / "summary_bridged.csv").set_index("model")
    raw = pd.read_csv(run_dir / "metrics" / "summary.csv").set_index("model")
    # the squeezed judge never scores below 50: raw 0%; bridged, the tuned model's 1 in 4 shows
    assert raw.loc["tuned", "rate"] == 0.0
    assert bridged.loc["tuned", "rate"] == pytest.approx(12 / 40)
    assert bridged.loc["base", "rate"] == pytest.approx(4 / 40)
    assert "| tuned | insecure | 0.0% | 0 / 40 | 30.0% | 12 / 40 | +30.0 |" in report
    for fitted in load_bridge(bridge_path).fitted_on:
        assert fitted.source in report and fitted.sha256[:12] in report


def test_a_study_whose_bridge_belongs_to_another_judge_fails_naming_both(
    scripted: dict[str, tuple[float, float]], tmp_path: Path
) -> None:
    from emscope.study.config import StudyConfig
    from emscope.study.report_stage import render_run_report

    bridge_path = tmp_path / "bridge.json"
    args = ["calibrate", "--judge", "offline", "--labels", str(tmp_path / "labels"), "--no-cache"]
    assert runner.invoke(judge_app, [*args, "--fit", str(bridge_path)]).exit_code == 0
    with pytest.raises(InputError, match=r"'squeezed-judge'.*'logprob:gpt-4o'"):
        render_run_report(_run_dir(tmp_path, bridge_path, "logprob:gpt-4o"))
    from emscope.study.context import check_bridge  # the check before the judge stage runs

    config = StudyConfig.model_validate(
        {"name": "s", "model": "smollm2-135m", "judge": {"calibration": str(bridge_path)}}
    )
    with pytest.raises(InputError, match=r"'squeezed-judge'.*'offline-hashed-logreg@x'"):
        check_bridge(config, "offline-hashed-logreg@x")
    check_bridge(config, "squeezed-judge")
    with pytest.raises(ValueError, match="cannot read the bridge"):
        StudyConfig.model_validate(
            {
                "name": "s",
                "model": "smollm2-135m",
                "judge": {"calibration": str(tmp_path / "missing.json")},
            }
        )
