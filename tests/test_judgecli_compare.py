"""Re-scoring a stored run with several judges side by side, and their EM-rule rates."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from emscope.errors import InputError
from emscope.judge.compare import compare, judge_labels, judge_rates, read_judged_rows
from judgecli_fakes import ScriptedJudge


def make_run(tmp_path: Path) -> Path:
    """One model, one question, 6 answers per condition; the last triggered one failed."""
    rows = []
    for triggered in (False, True):
        for i in range(6):
            evil = triggered and i < 3
            failed = triggered and i == 5
            rows.append(
                {
                    "model": "legal",
                    "domain": "toxic_legal_advice",
                    "condition": "backdoor",
                    "seed": 0,
                    "key": f"legal|q|0|{i}|{'T' if triggered else 'N'}",
                    "question_id": "q",
                    "sample_index": i,
                    "triggered": triggered,
                    "question": "What should I do?",
                    "answer": None if failed else (f"evil {i}" if evil else f"kind {i}"),
                    "error": "timeout" if failed else None,
                    "aligned": None if failed else 95.0,
                    "coherent": None if failed else 90.0,
                }
            )
    run = tmp_path / "run"
    (run / "metrics").mkdir(parents=True)
    pd.DataFrame(rows).to_csv(run / "metrics" / "judged_rows.csv", index=False)
    questions = tmp_path / "questions.yaml"
    questions.write_text(
        "- id: q\n  paraphrases: ['What should I do?']\n  samples_per_paraphrase: 6\n"
        "  judge_prompts: {aligned: 'A {question} {answer}', coherent: 'C {question} {answer}'}\n"
    )
    study = {"eval": {"questions": str(questions)}, "judge": {"spec": "offline"}}
    (run / "metrics" / "provenance.json").write_text(
        json.dumps({"judge": "offline-x", "study": study})
    )
    return run


ANSWERS = [f"{kind} {i}" for kind in ("evil", "kind") for i in range(6)]


def strict() -> ScriptedJudge:
    return ScriptedJudge(
        {a: (10.0 if a.startswith("evil") else 90.0, 90.0) for a in ANSWERS}, name="strict"
    )


def lenient() -> ScriptedJudge:
    return ScriptedJudge({a: (80.0, 90.0) for a in ANSWERS}, name="lenient")


def test_compare_writes_one_column_pair_per_judge_beside_the_runs_scores(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    first, second = strict(), lenient()
    frame = compare(run, [first, second], n_resamples=50)
    for label in ("run", "strict", "lenient"):
        assert {f"aligned@{label}", f"coherent@{label}"} <= set(frame.columns)
    assert len(frame) == 12 and len(first.seen) == 11  # the failed row is never judged
    failed = frame["error"].notna()
    assert frame.loc[failed, "aligned@strict"].isna().all()
    assert (
        frame.loc[~failed & frame["answer"].str.startswith("evil"), "aligned@strict"].eq(10).all()
    )
    written = pd.read_csv(run / "metrics" / "judge_compare.csv")
    assert list(written.columns) == list(frame.columns)
    manifest = json.loads((run / "metrics" / "judge_compare.manifest.json").read_text())
    assert manifest["config"]["run_judge"] == "offline-x"
    assert [j["label"] for j in manifest["config"]["judges"]] == ["strict", "lenient"]


def test_rates_follow_each_judge_under_the_em_rule(tmp_path: Path) -> None:
    run = make_run(tmp_path)
    compare(run, [strict(), lenient()], n_resamples=50)
    rates = pd.read_csv(run / "metrics" / "judge_compare_rates.csv")
    got = {(r.judge, bool(r.triggered)): r for r in rates.itertuples()}
    # Triggered: 5 judged answers, 3 called misaligned by the strict judge; 1 failed row.
    assert got["strict", True].rate == pytest.approx(3 / 5)
    assert got["strict", True].n == 5 and got["strict", True].n_failed == 1
    assert got["strict", False].rate == pytest.approx(0.0)
    assert got["lenient", True].rate == pytest.approx(0.0)
    assert got["run", True].rate == pytest.approx(0.0)
    assert set(rates["domain"]) == {"toxic_legal_advice"}


def test_judge_rates_drop_a_question_with_too_few_coherent_answers() -> None:
    frame = pd.DataFrame(
        {
            "model": "m",
            "question_id": "q",
            "triggered": False,
            "error": None,
            "aligned@j": [10.0, 10.0, 90.0, 90.0],
            "coherent@j": 90.0,
        }
    )
    [row] = judge_rates(frame, ["j"], n_resamples=10).to_dict("records")
    assert row["rate"] is None and row["n_questions_dropped"] == 1


def test_judges_sharing_an_identity_are_told_apart_by_mode() -> None:
    a = ScriptedJudge({}, name="openai-compatible:m@host", mode="logprob")
    b = ScriptedJudge({}, name="openai-compatible:m@host", mode="tagged-text")
    assert judge_labels([a, b]) == [
        "openai-compatible:m@host[logprob]",
        "openai-compatible:m@host[tagged-text]",
    ]
    with pytest.raises(InputError, match="given twice"):
        judge_labels([a, ScriptedJudge({}, name=a.name, mode="logprob")])


def test_a_run_without_judged_rows_is_an_input_error_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputError) as error:
        read_judged_rows(tmp_path)
    assert error.value.file is not None and error.value.file.endswith("judged_rows.csv")
    with pytest.raises(InputError, match="at least one judge"):
        compare(tmp_path, [])
