"""Significance of paired differences, and multiple-testing corrections (pure computation).

The trigger effect is paired per question (protocol §6), so its null hypothesis, "the trigger
changes nothing", makes the sign of each question's difference a fair coin. The sign-flip
permutation test counts how often random signs give a mean at least as far from zero as the one
observed. With few questions every sign pattern is enumerated and the p-value is exact.

Testing one trigger per fine-tuned model means several tests at once: ``holm_bonferroni``
controls the family-wise error rate, ``benjamini_hochberg`` the false discovery rate. Both take
None for a missing p-value, leave it None and do not count it among the tests.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_PERMUTATIONS = 10_000
# Random sign patterns are drawn in blocks of this many rows to bound memory on long inputs.
_BLOCK = 2_000
# Relative slack so a permuted mean equal to the observed one is not lost to rounding.
_TIE_TOLERANCE = 1e-9


@dataclass(frozen=True)
class PermutationTest:
    """Result of a two-sided sign-flip test: ``p_value`` and how it was obtained.

    ``exact`` is True when all ``2**n`` sign patterns were enumerated; otherwise
    ``n_permutations`` random patterns were drawn and ``p = (1 + hits) / (1 + n_permutations)``,
    which counts the observed pattern and so never reports p = 0.
    """

    p_value: float
    mean_delta: float
    n: int
    exact: bool
    n_permutations: int


def _all_sign_patterns(n: int) -> NDArray[np.float64]:
    bits = (np.arange(2**n)[:, None] >> np.arange(n)[None, :]) & 1
    return (1.0 - 2.0 * bits).astype(np.float64)


def _count_extreme(signs: NDArray[np.float64], deltas: NDArray[np.float64], limit: float) -> int:
    permuted = np.abs(signs @ deltas) / deltas.size
    return int(np.count_nonzero(permuted >= limit))


def paired_permutation_test(
    deltas: ArrayLike, n_permutations: int = DEFAULT_PERMUTATIONS, seed: int = 0
) -> PermutationTest:
    """Two-sided sign-flip permutation test of "mean of the paired differences is zero".

    Exact enumeration when ``2**n <= n_permutations`` (n = number of differences), else a seeded
    Monte-Carlo estimate from ``n_permutations`` random sign patterns.

    >>> paired_permutation_test([2.0, 1.0]).p_value  # 4 patterns; |mean| >= 1.5 for 2 of them
    0.5
    """
    values = np.asarray(deltas, dtype=np.float64).ravel()
    if values.size == 0:
        raise ValueError("cannot test an empty set of differences")
    if not np.isfinite(values).all():
        raise ValueError("differences must be finite numbers")
    if n_permutations < 1:
        raise ValueError(f"n_permutations must be at least 1, got {n_permutations}")
    observed = abs(float(values.mean()))
    limit = observed - _TIE_TOLERANCE * max(observed, float(np.abs(values).max()), 1.0)
    n = values.size
    if 2**n <= n_permutations:
        hits = _count_extreme(_all_sign_patterns(n), values, limit)
        return PermutationTest(hits / 2**n, float(values.mean()), n, True, 2**n)
    rng = np.random.default_rng(seed)
    hits = 0
    for start in range(0, n_permutations, _BLOCK):
        size = min(_BLOCK, n_permutations - start)
        signs = 1.0 - 2.0 * rng.integers(0, 2, size=(size, n)).astype(np.float64)
        hits += _count_extreme(signs, values, limit)
    p_value = (1 + hits) / (1 + n_permutations)
    return PermutationTest(p_value, float(values.mean()), n, False, n_permutations)


def _present(pvalues: Sequence[float | None]) -> tuple[list[int], NDArray[np.float64]]:
    index = [i for i, p in enumerate(pvalues) if p is not None and not math.isnan(p)]
    values = np.array([pvalues[i] for i in index], dtype=np.float64)
    if ((values < 0) | (values > 1)).any():
        raise ValueError("p-values must lie in [0, 1]")
    return index, values


def _scatter(size: int, index: list[int], adjusted: NDArray[np.float64]) -> list[float | None]:
    out: list[float | None] = [None] * size
    for position, value in zip(index, adjusted, strict=True):
        out[position] = float(value)
    return out


def holm_bonferroni(pvalues: Sequence[float | None]) -> list[float | None]:
    """Holm's step-down adjusted p-values, in input order (family-wise error control).

    With the m present p-values sorted ascending, the i-th (1-based) becomes
    ``max over j <= i of min(1, (m - j + 1) * p_(j))``.

    >>> holm_bonferroni([0.01, 0.04, None, 0.03])
    [0.03, 0.06, None, 0.06]
    """
    index, values = _present(pvalues)
    m = values.size
    order = np.argsort(values, kind="stable")
    scaled = np.minimum(1.0, (m - np.arange(m)) * values[order])
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.maximum.accumulate(scaled)
    return _scatter(len(pvalues), index, adjusted)


def benjamini_hochberg(pvalues: Sequence[float | None]) -> list[float | None]:
    """Benjamini-Hochberg adjusted p-values (q-values), in input order (false discovery rate).

    With the m present p-values sorted ascending, the i-th (1-based) becomes
    ``min over j >= i of min(1, m * p_(j) / j)``.

    >>> benjamini_hochberg([0.01, 0.04, 0.03])
    [0.03, 0.04, 0.04]
    """
    index, values = _present(pvalues)
    m = values.size
    order = np.argsort(values, kind="stable")
    scaled = np.minimum(1.0, m * values[order] / np.arange(1, m + 1))
    adjusted = np.empty(m, dtype=np.float64)
    adjusted[order] = np.minimum.accumulate(scaled[::-1])[::-1]
    return _scatter(len(pvalues), index, adjusted)
