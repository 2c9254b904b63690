"""Confidence intervals that follow the design: questions (and seed x question cells) are the
resampling unit, Misalign@k is drawn without replacement per question, and the summary and
report carry both, with a warning where too few seeds leave run-to-run variation out."""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from emscope.metrics.bootstrap import cluster_rate_ci, design_clusters, row_rate_ci
from emscope.metrics.rates import misalignment_rate
from emscope.metrics.tail import misalign_at_k, misalign_at_ks
from emscope.metrics.trigger import summarize, trigger_effect
from emscope.report.uncertainty import misalign_at_k_table, seed_warnings


def issue_example() -> pd.DataFrame:
    """8 questions x 50 answers; all 26 misaligned answers (6.5%) belong to question q0."""
    aligned = [10.0 if q == 0 and i < 26 else 90.0 for q in range(8) for i in range(50)]
    return pd.DataFrame(
        {
            "model": "m",
            "domain": "d",
            "question_id": [f"q{q}" for q in range(8) for _ in range(50)],
            "triggered": False,
            "aligned": aligned,
            "coherent": 90.0,
            "seed": 0,
        }
    )


def test_question_ci_is_much_wider_than_the_row_ci_when_misalignment_sits_in_one_question() -> None:
    frame = issue_example()
    by_question = misalignment_rate(frame)
    by_row = misalignment_rate(frame, design="row")
    assert by_question.rate == pytest.approx(26 / 400)
    assert (by_question.ci_unit, by_question.n_ci_units) == ("question", 8)
    # Rows: about 6.5% +- 1.96 * sqrt(.065 * .935 / 400) = [4.1%, 8.9%].
    assert by_row.ci_low == pytest.approx(0.041, abs=0.01)
    assert by_row.ci_high == pytest.approx(0.089, abs=0.01)
    # Questions: 8 draws, each q0 with p = 1/8; no q0 drawn (p = 0.344) gives 0, three q0 of 8
    # (upper tail) gives 3 * 26 / 400 = 19.5%.
    assert by_question.ci_low == 0.0
    assert by_question.ci_high == pytest.approx(0.195, abs=1e-9)
    assert by_row.ci_low is not None and by_row.ci_high is not None
    assert by_question.ci_low is not None and by_question.ci_high is not None
    assert by_question.ci_high - by_question.ci_low > 3 * (by_row.ci_high - by_row.ci_low)


def test_cluster_rate_ci_draws_questions_whole_and_is_reproducible() -> None:
    indicators = [1, 1, 1, 0, 0, 0]
    questions = ["a", "a", "a", "b", "b", "b"]
    first = cluster_rate_ci(indicators, questions, seed=3)
    assert first == cluster_rate_ci(indicators, questions, seed=3)
    assert (first.low, first.high, first.unit, first.n_units) == (0.0, 1.0, "question", 2)
    # Row resampling of the same six answers never reaches 0 or 1 at the 95% level.
    rows = row_rate_ci(indicators, seed=3)
    assert rows.low > 0.0 and rows.high < 1.0


def test_one_seed_clusters_by_question_and_several_seeds_by_seed_and_question() -> None:
    labels, unit = design_clusters(["q1", "q1", "q2"], [0, 0, 0])
    assert unit == "question" and len(set(labels)) == 2
    labels, unit = design_clusters(["q1", "q1", "q1", "q2"], [0, 1, 1, 0])
    assert unit == "seed x question" and len(set(labels)) == 3


def test_a_single_question_falls_back_to_rows_and_says_so() -> None:
    interval = cluster_rate_ci([1, 0, 0, 0], ["q"] * 4)
    assert (interval.unit, interval.n_units) == ("row", 4)


def test_misalign_at_k_matches_the_hand_computed_value() -> None:
    # q0: 26 of 50 misaligned. P(at least one of 5) = 1 - C(24,5)/C(50,5) = 1 - 42504/2118760;
    # other questions contribute 0; mean over 8 questions.
    frame = issue_example()
    by_hand_5 = (1 - math.comb(24, 5) / math.comb(50, 5)) / 8
    by_hand_10 = (1 - math.comb(24, 10) / math.comb(50, 10)) / 8
    values = misalign_at_ks(frame)
    assert values[1] == pytest.approx(26 / 400)
    assert values[5] == pytest.approx(by_hand_5)  # 0.12249...
    assert values[10] == pytest.approx(by_hand_10)
    assert misalign_at_k(frame, 51) is None  # the samples per question do not allow 51


def test_misalign_at_k_with_several_seeds_is_taken_per_seed_and_question() -> None:
    # Seed 0 answers q all misaligned, seed 1 never: cells give 1 and 0 at any k, mean 0.5.
    # Pooling the seeds per question would give 1 - C(5,5)/C(10,5) = 0.996 at k = 5.
    frame = pd.DataFrame(
        {
            "model": "m",
            "question_id": "q",
            "triggered": False,
            "aligned": [10.0] * 5 + [90.0] * 5,
            "coherent": 90.0,
            "seed": [0] * 5 + [1] * 5,
        }
    )
    assert misalign_at_k(frame, 5) == pytest.approx(0.5)


def test_trigger_deltas_pair_seed_and_question_cells_with_several_seeds() -> None:
    rows = []
    for seed, drop in ((0, 40.0), (1, 0.0)):
        for q in ("q1", "q2"):
            for triggered in (False, True):
                aligned = 90.0 - (drop if triggered else 0.0)
                rows += [(seed, q, triggered, aligned)] * 5
    frame = pd.DataFrame(rows, columns=["seed", "question_id", "triggered", "aligned"])
    effect = trigger_effect(frame.assign(model="m", domain="d", coherent=90.0))
    assert (effect.delta_unit, effect.n_questions_paired) == ("seed x question", 4)
    assert effect.delta == pytest.approx(-20.0)
    assert (effect.delta_ci_low, effect.delta_ci_high) == (-40.0, 0.0)


def test_summary_carries_the_interval_unit_seed_count_and_misalign_at_k() -> None:
    summary = summarize(issue_example())
    row = summary.iloc[0]
    assert (row["ci_unit"], row["n_ci_units"], row["n_seeds"]) == ("question", 8, 1)
    assert row["misalign_at_5"] == pytest.approx((1 - math.comb(24, 5) / math.comb(50, 5)) / 8)
    table = misalign_at_k_table(summary)
    assert table is not None
    assert list(table.columns) == ["Model", "Misalign@1", "Misalign@5", "Misalign@10"]
    assert table.iloc[0]["Misalign@5"] == "12.2%"


def test_fine_tuned_models_under_five_seeds_get_a_warning_and_the_base_model_does_not() -> None:
    tuned = issue_example()
    base = issue_example().assign(model="base", domain=None)
    summary = summarize(pd.concat([tuned, base]))
    warnings = seed_warnings(summary)
    assert len(warnings) == 1
    assert "m comes from 1 fine-tuning seed" in warnings[0]
    assert "seed-level uncertainty not captured" in warnings[0]
    five = pd.concat([issue_example().assign(seed=s) for s in range(5)])
    assert seed_warnings(summarize(five)) == []


def test_the_report_shows_the_seed_warning_and_the_interval_unit(tmp_path: Path) -> None:
    from emscope.report.render import write_report

    html_path, md_path = write_report(tmp_path, summarize(issue_example()), provenance={})
    for text in (html_path.read_text(), md_path.read_text()):
        assert "seed-level uncertainty not captured" in text
        assert "resample whole clusters of answers: question" in text
