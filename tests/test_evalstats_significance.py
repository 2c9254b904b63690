"""Sign-flip permutation test and multiple-testing corrections, against hand-computed values."""

from __future__ import annotations

import pytest

from emscope.metrics.significance import (
    benjamini_hochberg,
    holm_bonferroni,
    paired_permutation_test,
)


def test_exact_enumeration_counts_sign_patterns_at_least_as_extreme() -> None:
    # Sums of +-3 +-1 +-2 over the 8 patterns: 4, 0, 6, 2, -2, -6, 0, -4; |sum| >= 4 in four.
    result = paired_permutation_test([3.0, -1.0, 2.0])
    assert result.exact and result.n_permutations == 8
    assert result.p_value == pytest.approx(4 / 8)
    assert result.mean_delta == pytest.approx(4 / 3)


def test_identical_differences_are_matched_only_by_all_equal_signs() -> None:
    result = paired_permutation_test([5.0, 5.0, 5.0, 5.0])
    assert result.p_value == pytest.approx(2 / 16)


def test_a_negative_effect_is_as_significant_as_the_positive_one() -> None:
    assert paired_permutation_test([-3.0, 1.0, -2.0]).p_value == pytest.approx(0.5)


def test_no_difference_at_all_gives_p_one() -> None:
    assert paired_permutation_test([0.0, 0.0, 0.0]).p_value == 1.0


def test_enumeration_is_used_only_while_all_patterns_fit_the_budget() -> None:
    assert paired_permutation_test([1.0] * 4, n_permutations=16).exact
    assert not paired_permutation_test([1.0] * 5, n_permutations=16).exact


def test_monte_carlo_counts_the_observed_pattern_and_is_reproducible() -> None:
    first = paired_permutation_test([1.0] * 20, n_permutations=1000, seed=3)
    again = paired_permutation_test([1.0] * 20, n_permutations=1000, seed=3)
    assert not first.exact and first == again
    # Only the two all-equal patterns out of 2**20 reach the observed mean, so hits are ~0.
    assert first.p_value == pytest.approx(1 / 1001)


def test_monte_carlo_p_is_close_to_the_exact_p() -> None:
    deltas = [4.0, -1.0, 2.5, 3.0, -2.0, 0.5, 1.0, -0.5, 2.0, 1.5, -3.0, 0.25]
    exact = paired_permutation_test(deltas, n_permutations=2**12)
    sampled = paired_permutation_test(deltas, n_permutations=2**12 - 1, seed=1)
    assert exact.exact and not sampled.exact
    assert sampled.p_value == pytest.approx(exact.p_value, abs=0.03)


def test_permutation_test_rejects_empty_or_non_finite_input() -> None:
    with pytest.raises(ValueError, match="empty"):
        paired_permutation_test([])
    with pytest.raises(ValueError, match="finite"):
        paired_permutation_test([1.0, float("nan")])


def test_holm_multiplies_by_remaining_tests_and_keeps_order_monotone() -> None:
    # Sorted 0.001, 0.03, 0.04 -> 3*0.001, 2*0.03, 1*0.04 = 0.003, 0.06, 0.04 -> cummax.
    assert holm_bonferroni([0.04, 0.001, 0.03]) == pytest.approx([0.06, 0.003, 0.06])
    assert holm_bonferroni([0.01, 0.02, 0.03, 0.5]) == pytest.approx([0.04, 0.06, 0.06, 0.5])


def test_holm_caps_at_one_and_skips_missing_p_values() -> None:
    assert holm_bonferroni([0.6, None, 0.7]) == [1.0, None, 1.0]
    assert holm_bonferroni([0.02, None]) == [pytest.approx(0.02), None]


def test_benjamini_hochberg_scales_by_rank_and_takes_running_minimum_from_the_top() -> None:
    # Sorted 0.001, 0.03, 0.04 -> 3*0.001/1, 3*0.03/2, 3*0.04/3 = 0.003, 0.045, 0.04 -> cummin.
    assert benjamini_hochberg([0.04, 0.001, 0.03]) == pytest.approx([0.04, 0.003, 0.04])
    assert benjamini_hochberg([0.01, 0.02, 0.03, 0.5]) == pytest.approx([0.04, 0.04, 0.04, 0.5])
    assert benjamini_hochberg([None, 0.5, float("nan")]) == [None, 0.5, None]


def test_corrections_reject_values_outside_the_unit_interval() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        holm_bonferroni([0.5, 1.5])
