"""AUC, TPR at low FPR, and domain-level susceptibility prediction on hand-made cases."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from emscope.analyses import membership
from emscope.analyses.membership import (
    auc,
    domain_level_scores,
    high_susceptibility,
    leave_one_domain_out_auc,
    membership_auc,
    predict_susceptibility,
    susceptibility_table,
    tpr_at_fpr,
)
from emscope.errors import InputError


def test_auc_counts_ties_as_half() -> None:
    # Pairs: (2>1), (2=2 half), (3>1), (3>2) -> 3.5 of 4.
    assert auc([2.0, 3.0], [1.0, 2.0]) == 0.875


def test_membership_auc_gives_a_bootstrap_interval_around_the_auc_and_is_seeded() -> None:
    rng = np.random.default_rng(1)
    members, others = rng.normal(1.0, 1.0, 60), rng.normal(0.0, 1.0, 60)
    result = membership_auc(members, others, n_resamples=300, seed=3)
    assert result.ci_low < result.auc < result.ci_high
    assert (result.n_members, result.n_nonmembers) == (60, 60)
    assert membership_auc(members, others, n_resamples=300, seed=3) == result
    assert membership_auc(members, others, n_resamples=300, seed=4) != result


def test_membership_auc_refuses_nan_scores_naming_the_field() -> None:
    with pytest.raises(InputError) as caught:
        membership_auc([1.0, float("nan")], [0.0])
    assert caught.value.field == "member_scores"


def test_tpr_at_fpr_is_refused_with_a_reason_when_nonmembers_are_too_few() -> None:
    result = tpr_at_fpr(np.ones(500), np.zeros(99), 0.01)
    assert result.tpr is None and result.threshold is None
    assert result.reason is not None and "at least 100 non-members" in result.reason
    assert tpr_at_fpr(np.ones(500), np.zeros(999), 0.001).tpr is None


def test_tpr_at_fpr_lets_at_most_the_allowed_nonmembers_pass_the_threshold() -> None:
    others = np.arange(200, dtype=float)  # 0..199; 1% of 200 = 2 may pass -> threshold 197
    members = np.array([196.0, 197.0, 197.5, 250.0])
    result = tpr_at_fpr(members, others, 0.01)
    assert result.threshold == 197.0
    assert result.tpr == 0.5
    assert np.mean(others > result.threshold) <= 0.01


def spearman_pearson_case() -> tuple[pd.DataFrame, pd.Series]:
    domains = ["a", "b", "c", "d", "e"]
    scores = pd.DataFrame({"domain": domains, "loss": [1.0, 2.0, 3.0, 4.0, 5.0]})
    rates = pd.Series([0.1, 0.3, 0.2, 0.5, 0.9], index=domains)
    return scores, rates


def test_spearman_and_pearson_match_the_hand_computation_with_the_domain_count_as_n() -> None:
    scores, rates = spearman_pearson_case()
    (result,) = predict_susceptibility(scores, rates)
    # Ranks of rates: 1,3,2,4,5 -> sum d^2 = 2 -> rho = 1 - 6*2 / (5*24) = 0.9.
    assert result.spearman == pytest.approx(0.9)
    x, y = np.arange(1.0, 6.0), np.array([0.1, 0.3, 0.2, 0.5, 0.9])
    dx, dy = x - x.mean(), y - y.mean()
    assert result.pearson == pytest.approx((dx @ dy) / np.sqrt((dx @ dx) * (dy @ dy)))
    assert result.n == 5
    assert result.spearman_p is not None and 0.0 < result.spearman_p < 1.0


def test_numpy_fallback_gives_the_same_coefficients_without_p_values() -> None:
    x = np.array([1.0, 2.0, 2.0, 4.0, 5.0])
    y = np.array([0.1, 0.3, 0.2, 0.5, 0.5])
    with_scipy = membership._correlations(x, y)
    fallback = membership._numpy_correlations(x, y)
    assert fallback["spearman"] == pytest.approx(with_scipy["spearman"])
    assert fallback["pearson"] == pytest.approx(with_scipy["pearson"])
    assert fallback["spearman_p"] is None


def test_high_susceptibility_splits_strictly_above_the_median_rate() -> None:
    assert high_susceptibility(np.array([0.1, 0.5, 0.2, 0.9])).tolist() == [
        False,
        True,
        False,
        True,
    ]


def test_leave_one_domain_out_auc_is_one_on_a_separable_case() -> None:
    scores = [0.0, 0.1, 0.2, 0.3, 10.0, 10.1, 10.2, 10.3]
    high = [False] * 4 + [True] * 4
    assert leave_one_domain_out_auc(scores, high) == 1.0


def test_leave_one_domain_out_auc_learns_the_direction_so_a_negated_score_scores_alike() -> None:
    scores = [0.0, 0.1, 0.2, 0.3, 10.0, 10.1, 10.2, 10.3]
    high = [False] * 4 + [True] * 4
    assert leave_one_domain_out_auc([-s for s in scores], high) == 1.0


def test_leave_one_domain_out_auc_is_at_chance_or_below_for_an_unrelated_score() -> None:
    scores = [1.0, 5.0, 2.0, 6.0, 1.5, 5.5, 2.5, 6.5]
    high = [False, False, False, False, True, True, True, True]
    assert leave_one_domain_out_auc(scores, high) <= 0.5


def test_predict_susceptibility_reports_loo_auc_per_score_column() -> None:
    domains = list("abcdefgh")
    scores = pd.DataFrame(
        {
            "domain": domains,
            "adjusted_loss": [0.0, 0.1, 0.2, 0.3, 10.0, 10.1, 10.2, 10.3],
            "zlib": [3.0, 1.0, 4.0, 1.0, 5.0, 9.0, 2.0, 6.0],
        }
    )
    rates = pd.Series([0.0, 0.01, 0.02, 0.03, 0.4, 0.5, 0.6, 0.7], index=domains)
    results = predict_susceptibility(scores, rates)
    table = susceptibility_table(results)
    assert table["score"].tolist() == ["adjusted_loss", "zlib"]
    assert results[0].loo_auc == 1.0
    assert (results[0].n_high, results[0].n_low) == (4, 4)


def test_predict_susceptibility_refuses_fewer_than_four_domains() -> None:
    scores = pd.DataFrame({"domain": ["a", "b", "c", "d"], "loss": [1.0, 2.0, 3.0, 4.0]})
    rates = pd.Series([0.1, 0.2, 0.3], index=["a", "b", "c"])
    with pytest.raises(InputError, match="at least 4 domains"):
        predict_susceptibility(scores, rates)


def test_predict_susceptibility_refuses_row_level_scores_that_repeat_a_domain() -> None:
    scores = pd.DataFrame({"domain": ["a", "a", "b", "c", "d"], "loss": [1.0, 2, 3, 4, 5]})
    rates = pd.Series([0.1, 0.2, 0.3, 0.4], index=["a", "b", "c", "d"])
    with pytest.raises(InputError, match="one row per domain"):
        predict_susceptibility(scores, rates)


def test_domain_level_scores_average_examples_within_each_domain() -> None:
    rows = pd.DataFrame({"domain": ["b", "a", "b", "a"], "loss": [1.0, 2.0, 3.0, 6.0]})
    table = domain_level_scores(rows, score_columns=["loss"])
    assert table.to_dict("list") == {"domain": ["a", "b"], "loss": [4.0, 2.0]}
