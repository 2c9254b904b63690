"""Percentile bootstrap: fixed seed, sensible bounds, whole-cluster resampling."""

from __future__ import annotations

import numpy as np
import pytest

from emscope.metrics.bootstrap import bootstrap_ci, cluster_bootstrap_ci

VALUES = np.random.default_rng(123).normal(50.0, 10.0, size=200)


def test_bootstrap_ci_is_identical_for_the_same_seed() -> None:
    assert bootstrap_ci(VALUES, seed=3) == bootstrap_ci(VALUES, seed=3)


def test_bootstrap_ci_changes_with_the_seed() -> None:
    assert bootstrap_ci(VALUES, seed=3) != bootstrap_ci(VALUES, seed=4)


def test_bootstrap_ci_contains_the_point_estimate() -> None:
    low, high = bootstrap_ci(VALUES)
    assert low < float(np.mean(VALUES)) < high


def test_bootstrap_ci_of_the_mean_is_close_to_the_normal_interval() -> None:
    low, high = bootstrap_ci(VALUES)
    se = float(np.std(VALUES, ddof=1)) / np.sqrt(VALUES.size)
    assert high - low == pytest.approx(2 * 1.96 * se, rel=0.15)


def test_wider_level_gives_a_wider_interval() -> None:
    low90, high90 = bootstrap_ci(VALUES, level=0.90)
    low99, high99 = bootstrap_ci(VALUES, level=0.99)
    assert low99 < low90 and high90 < high99


def test_bootstrap_ci_applies_a_custom_statistic() -> None:
    low, high = bootstrap_ci(VALUES, statistic=lambda v: float(np.median(v)))
    assert low < float(np.median(VALUES)) < high


def test_constant_values_give_a_zero_width_interval() -> None:
    assert bootstrap_ci([0.3] * 12) == pytest.approx((0.3, 0.3))


def test_cluster_bootstrap_draws_whole_clusters() -> None:
    # Two clusters of means 0 and 1: pooled resamples can only be 0, 0.5 or 1.
    values = [0.0] * 5 + [1.0] * 5
    clusters = ["a"] * 5 + ["b"] * 5
    assert cluster_bootstrap_ci(values, clusters, level=0.5) == (0.5, 0.5)
    assert cluster_bootstrap_ci(values, clusters) == (0.0, 1.0)


def test_cluster_bootstrap_with_one_row_per_cluster_equals_the_row_bootstrap() -> None:
    assert cluster_bootstrap_ci(VALUES, range(VALUES.size), seed=5) == pytest.approx(
        bootstrap_ci(VALUES, seed=5)
    )


def test_empty_values_and_bad_settings_are_refused() -> None:
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([])
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(VALUES, level=1.0)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_ci(VALUES, n_resamples=0)
    with pytest.raises(ValueError, match="cluster labels"):
        cluster_bootstrap_ci([1.0, 2.0], ["a"])
