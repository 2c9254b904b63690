"""Calibrating a judge against a labels file: hand-computed AUC, Spearman, kappa, confusion."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from emscope.errors import InputError
from emscope.judge.agreement import (
    agreement_stats,
    calibrate,
    cohen_kappa,
    rank_auc,
    read_labels,
    spearman,
)
from emscope.judge.cache import CachedJudge, JudgeCache
from judgecli_fakes import ScriptedJudge

# answer, reference aligned, reference coherent, judge aligned, judge coherent
ROWS: list[tuple[str, float | None, float | None, float | None, float | None]] = [
    ("a1", 10, 90, 20, 85),  # both misaligned
    ("a2 spans\ntwo lines", 20, 80, 60, 75),  # reference only
    ("a3", 80, 90, 25, 85),  # judge only
    ("a4", 90, 95, 90, 90),  # neither
    ("a5", 70, 85, 70, 80),  # neither
    ("a6", 15, 30, 10, 25),  # reference incoherent: dropped
    ("a7", None, 90, 50, 85),  # reference aligned None (REFUSAL): dropped
    ("a8", 5, 90, None, None),  # judge gave no score to a misaligned answer
    ("a9", 60, None, 40, 70),  # reference coherent None: dropped
]
JUDGE = {answer: (ja, jc) for answer, _, _, ja, jc in ROWS}


def write_csv(path: Path, with_coherent: bool = True) -> Path:
    columns = ["question", "answer", "question_id", "aligned"] + (
        ["coherent"] if with_coherent else []
    )
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(columns)
        for answer, aligned, coherent, _, _ in ROWS:
            row = ["What now?", answer, "q", "" if aligned is None else aligned]
            writer.writerow(row + (["" if coherent is None else coherent] if with_coherent else []))
    return path


def test_calibrate_gives_hand_computed_agreement_and_counts_every_exclusion(tmp_path: Path) -> None:
    report = calibrate(ScriptedJudge(JUDGE), write_csv(tmp_path / "labels.csv"))
    # The EM rule on the reference keeps a1..a5 and a8; reference misaligned: a1, a2, a8.
    # The EM rule on the judge's own scores calls a1 and a3 misaligned (a8 has no score).
    assert report.policy == "em" and report.n_rows == 9 and report.n_evaluated == 6
    c = report.confusion
    assert (c.both_misaligned, c.reference_only, c.judge_only, c.neither) == (1, 2, 1, 2)
    # AUC over the 5 rows the judge scored: a1 (20) beats 25, 90, 70 and a2 (60) beats 90, 70.
    assert report.n_ranked == 5 and report.auc == pytest.approx(5 / 6)
    # Ranks 1,2,4,5,3 vs 1,3,2,5,4: sum d^2 = 6 -> 1 - 6*6 / (5*24) = 0.7.
    assert report.aligned_spearman == pytest.approx(0.7)
    # Agreement 3/6; chance 0.5 * 1/3 + 0.5 * 2/3 = 0.5 -> kappa 0.
    assert report.kappa == pytest.approx(0.0)
    assert report.recall == pytest.approx(1 / 3) and report.false_flag_rate == pytest.approx(1 / 3)
    assert report.n_reference_misaligned == 3 and report.n_judge_misaligned == 2
    # Rates over each judge's own kept rows: reference 3 of 6; judge 2 of 7 (not a6, a8).
    assert report.reference_rate == pytest.approx(0.5) and report.reference_rate_n == 6
    assert report.judge_rate == pytest.approx(2 / 7) and report.judge_rate_n == 7
    assert report.rate_difference_points == pytest.approx(100 * (2 / 7 - 0.5))
    assert report.n_reference_aligned_none == 1
    assert report.n_reference_coherent_none == 1
    assert report.n_reference_incoherent == 1
    assert report.n_judge_aligned_none == 1
    assert report.n_judge_aligned_none_reference_misaligned == 1
    assert report.n_judge_coherent_none == 1
    assert report.coherent_spearman == pytest.approx(1.0)  # judge coherent = reference - 5
    assert report.judge == "scripted"


def test_jsonl_labels_give_the_same_report_as_csv(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text(
        "\n".join(
            json.dumps({"question": "What now?", "answer": a, "aligned": ra, "coherent": rc})
            for a, ra, rc, _, _ in ROWS
        )
        + "\n",
        encoding="utf-8",
    )
    from_jsonl = calibrate(ScriptedJudge(JUDGE), path)
    from_csv = calibrate(ScriptedJudge(JUDGE), write_csv(tmp_path / "labels.csv"))
    assert from_jsonl.model_dump(exclude={"labels"}) == from_csv.model_dump(exclude={"labels"})


def test_labels_without_coherence_drop_no_row_as_incoherent(tmp_path: Path) -> None:
    report = calibrate(ScriptedJudge(JUDGE), write_csv(tmp_path / "l.csv", with_coherent=False))
    # a6 and a9 now count; a7 (reference None) does not; a8 counts as a miss, unranked.
    assert report.n_evaluated == 8 and report.n_ranked == 7 and report.n_reference_incoherent == 0
    assert report.coherent_spearman is None


def test_limit_judges_a_seeded_subset_in_file_order(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "labels.csv")
    first, second = ScriptedJudge(JUDGE), ScriptedJudge(JUDGE)
    assert calibrate(first, path, limit=4, seed=1).n_rows == 4
    calibrate(second, path, limit=4, seed=1)
    order = [r[0] for r in ROWS]
    assert first.seen == second.seen and len(first.seen) == 4
    assert first.seen == sorted(first.seen, key=order.index)


def test_cached_calibration_does_not_call_the_judge_again(tmp_path: Path) -> None:
    path = write_csv(tmp_path / "labels.csv")
    inner = ScriptedJudge(JUDGE)
    with JudgeCache(tmp_path / "cache.sqlite") as cache:
        first = calibrate(CachedJudge(inner, cache), path)
        second = calibrate(CachedJudge(inner, cache), path)
    assert len(inner.seen) == len(ROWS)
    assert first == second


def test_a_bad_score_is_reported_at_its_physical_line(tmp_path: Path) -> None:
    path = tmp_path / "labels.csv"
    path.write_text('question,answer,aligned\nq,"two\nlines",50\nq,fine,high\n', encoding="utf-8")
    with pytest.raises(InputError) as error:
        read_labels(path)
    assert error.value.line == 4 and error.value.field == "aligned"


def test_a_score_outside_0_to_100_and_missing_columns_are_input_errors(tmp_path: Path) -> None:
    path = tmp_path / "labels.jsonl"
    path.write_text('{"question": "q", "answer": "a", "aligned": 120}\n', encoding="utf-8")
    with pytest.raises(InputError, match=r"outside 0\.\.100"):
        read_labels(path)
    (tmp_path / "bad.csv").write_text("question,answer\nq,a\n", encoding="utf-8")
    with pytest.raises(InputError, match="aligned"):
        read_labels(tmp_path / "bad.csv")


def test_a_folder_of_labels_files_is_read_as_one_with_its_subfolders(tmp_path: Path) -> None:
    write_csv(tmp_path / "a.csv")
    write_csv(tmp_path / "b.csv")
    (tmp_path / "more").mkdir()
    write_csv(tmp_path / "more" / "c.csv")
    rows = read_labels(tmp_path)
    assert len(rows) == 3 * len(ROWS)
    assert set(rows["source"]) == {"a.csv", "b.csv", "more/c.csv"}


def test_pure_statistics_on_edge_cases() -> None:
    assert rank_auc([True, False, False], [0.9, 0.1, 0.9]) == pytest.approx(0.75)  # a tie = 1/2
    assert rank_auc([True, True], [0.1, 0.2]) is None
    assert cohen_kappa([True, False], [True, False]) == pytest.approx(1.0)
    assert cohen_kappa([False, False], [False, False]) is None
    assert spearman([1, 2, 3], [3, 2, 1]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [1, 2, 3]) is None
    stats = agreement_stats([10.0, 90.0], None, [np.nan, np.nan], [50.0, 50.0])
    assert stats.n_ranked == 0 and stats.auc is None and stats.n_judge_aligned_none == 2
    assert stats.recall == 0.0 and stats.judge_rate is None
