"""Percentile bootstrap confidence intervals with a fixed seed, so a rerun gives the same interval.

Two resampling units are offered: single values (``bootstrap_ci``) and whole clusters of values
(``cluster_bootstrap_ci``), e.g. all rows of one training seed, when those rows are not
independent draws. A misalignment rate's interval follows the study's design
(``cluster_rate_ci``): questions are resampled, or (seed, question) cells with several seeds, all
answers of a drawn cluster with it (protocol section 4).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import NamedTuple

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


DESIGN_UNITS = ("question", "seed x question", "row")


class DesignInterval(NamedTuple):
    """A rate's interval and the unit its bootstrap resampled (``unit``, ``n_units`` of them)."""

    low: float
    high: float
    unit: str
    n_units: int


def design_clusters(
    question_ids: ArrayLike | Sequence[object], seeds: ArrayLike | Sequence[object] | None = None
) -> tuple[NDArray[np.object_], str]:
    """The cluster label of each answer under the study's design, and the unit's name.

    Answers to one question are not independent draws (the question sets much of the answer), so
    the unit is the question; with two or more seeds (fine-tuning runs) among the rows, the unit is
    the (seed, question) cell, since one run's answers share its weights.
    """
    questions = np.asarray(question_ids, dtype=object).ravel().astype(str)
    if seeds is None:
        return questions.astype(object), "question"
    seed_values = np.asarray(seeds, dtype=object).ravel().astype(str)
    if seed_values.size != questions.size:
        raise ValueError(f"{questions.size} question ids but {seed_values.size} seeds")
    if np.unique(seed_values).size < 2:
        return questions.astype(object), "question"
    cells = np.char.add(np.char.add(seed_values, "\x1f"), questions)
    return cells.astype(object), "seed x question"


def cluster_rate_ci(
    indicators: ArrayLike,
    question_ids: ArrayLike | Sequence[object],
    seeds: ArrayLike | Sequence[object] | None = None,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> DesignInterval:
    """Percentile interval of a pooled rate (mean of 0/1 ``indicators``) resampling clusters.

    The clusters are questions, or (seed, question) cells when ``seeds`` holds two or more
    values (:func:`design_clusters`); each resample draws as many clusters as there are, with
    replacement, all answers of a drawn cluster with it, and pools them. With one cluster only the
    design gives no interval, so the answers are resampled and the unit says ``row`` (the caller
    shows it). Fixed ``seed``: a rerun gives the same interval.

    >>> cluster_rate_ci([1, 1, 0, 0], ["a", "a", "b", "b"], level=0.5)
    DesignInterval(low=0.5, high=0.5, unit='question', n_units=2)
    """
    _check_settings(n_resamples, level)
    values = np.asarray(indicators, dtype=np.float64).ravel()
    labels, unit = design_clusters(question_ids, seeds)
    if values.size != labels.size:
        raise ValueError(f"{values.size} values but {labels.size} cluster labels")
    if values.size == 0:
        raise ValueError("cannot bootstrap an empty set of values")
    codes = _codes_in_order_of_appearance(labels)
    n_clusters = int(codes.max()) + 1
    if n_clusters < 2:
        low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed, level=level)
        return DesignInterval(low, high, "row", int(values.size))
    hits = np.bincount(codes, weights=values, minlength=n_clusters)
    sizes = np.bincount(codes, minlength=n_clusters).astype(np.float64)
    rng = np.random.default_rng(seed)
    drawn = rng.integers(0, n_clusters, (n_resamples, n_clusters))
    stats = hits[drawn].sum(axis=1) / sizes[drawn].sum(axis=1)
    low, high = _percentile_interval(stats, level)
    return DesignInterval(low, high, unit, n_clusters)


def row_rate_ci(
    indicators: ArrayLike,
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
) -> DesignInterval:
    """The row bootstrap of a rate, as a :class:`DesignInterval` (unit ``row``): each answer
    resampled on its own, which ignores the question and seed clustering and is too narrow when
    answers cluster. For comparison with :func:`cluster_rate_ci`."""
    values = np.asarray(indicators, dtype=np.float64).ravel()
    low, high = bootstrap_ci(values, n_resamples=n_resamples, seed=seed, level=level)
    return DesignInterval(low, high, "row", int(values.size))
