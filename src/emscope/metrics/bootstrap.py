"""Percentile bootstrap confidence intervals with a fixed seed, so a rerun gives the same interval.

Two resampling units are offered: single values (``bootstrap_ci``) and whole clusters of values
(``cluster_bootstrap_ci``), e.g. all rows of one training seed, when those rows are not
independent draws.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

Statistic = Callable[[NDArray[np.float64]], float]

DEFAULT_RESAMPLES = 2000
DEFAULT_LEVEL = 0.95


def _mean(values: NDArray[np.float64]) -> float:
    return float(np.mean(values))


def _check_settings(n_resamples: int, level: float) -> None:
    if n_resamples < 1:
        raise ValueError(f"n_resamples must be at least 1, got {n_resamples}")
    if not 0.0 < level < 1.0:
        raise ValueError(f"level must be strictly between 0 and 1, got {level}")


def _percentile_interval(stats: NDArray[np.float64], level: float) -> tuple[float, float]:
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return float(low), float(high)


def _codes_in_order_of_appearance(labels: NDArray[np.object_]) -> NDArray[np.intp]:
    # Order clusters by first appearance so the same data in the same order resample alike.
    _, first, codes = np.unique(labels.astype(str), return_index=True, return_inverse=True)
    rank = np.empty(first.size, dtype=np.intp)
    rank[np.argsort(first)] = np.arange(first.size)
    return rank[codes]


def bootstrap_ci(
    values: ArrayLike,
    *,
    statistic: Statistic = _mean,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over values resampled with replacement.

    >>> bootstrap_ci([1.0, 1.0, 1.0])
    (1.0, 1.0)
    """
    _check_settings(n_resamples, level)
    data = np.asarray(values, dtype=np.float64).ravel()
    if data.size == 0:
        raise ValueError("cannot bootstrap an empty set of values")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples, dtype=np.float64)
    for i in range(n_resamples):
        stats[i] = statistic(data[rng.integers(0, data.size, data.size)])
    return _percentile_interval(stats, level)


def cluster_bootstrap_ci(
    values: ArrayLike,
    clusters: ArrayLike | Sequence[object],
    *,
    statistic: Statistic = _mean,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> tuple[float, float]:
    """Percentile bootstrap interval that resamples whole clusters with replacement.

    Each resample draws as many clusters as there are, with replacement, pools the values of the
    drawn clusters and applies ``statistic`` to the pool. With the mean of 0/1 indicators this is
    the pooled rate, weighting each cluster by its size.
    """
    _check_settings(n_resamples, level)
    data = np.asarray(values, dtype=np.float64).ravel()
    labels = np.asarray(clusters, dtype=object).ravel()
    if data.size != labels.size:
        raise ValueError(f"{data.size} values but {labels.size} cluster labels")
    if data.size == 0:
        raise ValueError("cannot bootstrap an empty set of values")
    codes = _codes_in_order_of_appearance(labels)
    groups = [data[codes == c] for c in range(int(codes.max()) + 1)]
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples, dtype=np.float64)
    for i in range(n_resamples):
        drawn = rng.integers(0, len(groups), len(groups))
        stats[i] = statistic(np.concatenate([groups[g] for g in drawn]))
    return _percentile_interval(stats, level)
