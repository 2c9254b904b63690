"""Membership-inference scores of one example, from its per-token log-probs (protocol §8).

Every score here is pure arithmetic on arrays: ``l`` holds the log-prob of each scored (assistant)
token under the model, ``mu`` and ``sigma`` the mean and standard deviation of ``log p`` under the
model's own full-vocabulary distribution at that position. Model I/O lives in
:mod:`emscope.analyses.mia_scoring`.

All scores share one orientation: **larger = more member-like**, so any of them can go straight
into an AUC. With ``L = -mean(l)`` the loss and ``n`` the number of scored tokens:

==============  =====================================  ==========================================
score           member score returned                  raw statistic in the literature
==============  =====================================  ==========================================
loss            ``-L`` (= mean l_t)                    loss ``L``; members have low ``L``
min_k           mean of the ``max(1, floor(k n))``     the same (Min-K%, Shi et al. 2024);
                smallest ``l_t``                       already member-high, not flipped
min_k_pp        same over ``z_t = (l_t-mu_t)/sigma_t`` the same (Min-K%++, Zhang et al. 2025);
                                                       already member-high, not flipped
zlib            ``-L / len(zlib.compress(text))``      ratio ``L / zlib bytes`` (Carlini et al.
                                                       2021); members have a low ratio
lowercase       ``-L(text) / L(text.lower())``         ratio ``L / L_lower``; members have a
                                                       low ratio (needs a second scoring pass
                                                       on the lowercased text)
adjusted        ``s_target - s_reference``             ``L_target - L_reference``; with the
                for any score ``s`` above              loss this equals ``L_ref - L_target``
==============  =====================================  ==========================================

``mu_t = sum_v p log p`` and ``sigma_t^2 = sum_v p (log p)^2 - mu_t^2``: ``sigma_t`` is computed
in the equivalent centred form ``sum_v p (log p - mu_t)^2``, which does not lose precision to
cancellation. A zero ``sigma_t`` (a one-hot distribution) is floored at :data:`SIGMA_FLOOR`.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray

DEFAULT_K = 0.2
SIGMA_FLOOR = 1e-12
SCORE_NAMES: tuple[str, ...] = ("loss", "min_k", "min_k_pp", "zlib", "lowercase")

FloatArray = NDArray[np.float64]


def _as_tokens(values: ArrayLike, name: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise ValueError(f"{name}: no scored tokens (the example has no assistant tokens left)")
    return array


def mean_loss(log_probs: ArrayLike) -> float:
    """The raw loss ``L = -mean(l_t)`` (not oriented; members have a *low* value)."""
    return float(-np.mean(_as_tokens(log_probs, "log_probs")))


def loss_score(log_probs: ArrayLike) -> float:
    """Member score of the loss: ``-L``."""
    return -mean_loss(log_probs)


def _lowest_fraction_mean(values: FloatArray, k: float) -> float:
    if not 0.0 < k <= 1.0:
        raise ValueError(f"k must be in (0, 1], got {k}")
    count = max(1, math.floor(k * values.size))
    return float(np.mean(np.sort(values)[:count]))


def min_k_score(log_probs: ArrayLike, k: float = DEFAULT_K) -> float:
    """Min-K%: mean of the ``max(1, floor(k n))`` smallest token log-probs."""
    return _lowest_fraction_mean(_as_tokens(log_probs, "log_probs"), k)


def standardized_log_probs(log_probs: ArrayLike, mu: ArrayLike, sigma: ArrayLike) -> FloatArray:
    """``z_t = (l_t - mu_t) / sigma_t``, with ``sigma_t`` floored at :data:`SIGMA_FLOOR`."""
    lp = _as_tokens(log_probs, "log_probs")
    m = np.asarray(mu, dtype=np.float64).ravel()
    s = np.asarray(sigma, dtype=np.float64).ravel()
    if not lp.size == m.size == s.size:
        raise ValueError(f"{lp.size} log-probs but {m.size} mu and {s.size} sigma values")
    return (lp - m) / np.maximum(s, SIGMA_FLOOR)


def min_k_plus_plus_score(
    log_probs: ArrayLike, mu: ArrayLike, sigma: ArrayLike, k: float = DEFAULT_K
) -> float:
    """Min-K%++: Min-K% over the standardized log-probs ``z_t``."""
    return _lowest_fraction_mean(standardized_log_probs(log_probs, mu, sigma), k)


def zlib_length(text: str) -> int:
    """Bytes of the zlib-compressed UTF-8 text (default compression level)."""
    return len(zlib.compress(text.encode("utf-8")))


def zlib_score(log_probs: ArrayLike, text: str) -> float:
    """Member score of the zlib ratio: ``-L / len(zlib.compress(text))``."""
    return -mean_loss(log_probs) / zlib_length(text)


def lowercase_score(log_probs: ArrayLike, lowercase_log_probs: ArrayLike) -> float:
    """Member score of the lowercase ratio: ``-L(text) / L(text.lower())``.

    NaN when the lowercased text has zero loss (the ratio is undefined).
    """
    lower = mean_loss(lowercase_log_probs)
    if lower == 0.0:
        return math.nan
    return -mean_loss(log_probs) / lower


def reference_adjusted(target: float, reference: float) -> float:
    """``s_target - s_reference`` for member scores ``s`` of the same kind (member-high)."""
    return target - reference


def example_scores(
    log_probs: ArrayLike,
    mu: ArrayLike,
    sigma: ArrayLike,
    text: str,
    *,
    k: float = DEFAULT_K,
    lowercase_log_probs: ArrayLike | None = None,
) -> dict[str, float]:
    """Every score of one example, keyed by :data:`SCORE_NAMES` (``lowercase`` NaN if not given).

    >>> s = example_scores([-1.0, -3.0], [-2.0, -2.0], [1.0, 1.0], "ab", k=0.5)
    >>> s["loss"], s["min_k"], s["min_k_pp"]
    (-2.0, -3.0, -1.0)
    """
    lowered = (
        lowercase_score(log_probs, lowercase_log_probs)
        if lowercase_log_probs is not None
        else math.nan
    )
    return {
        "loss": loss_score(log_probs),
        "min_k": min_k_score(log_probs, k),
        "min_k_pp": min_k_plus_plus_score(log_probs, mu, sigma, k),
        "zlib": zlib_score(log_probs, text),
        "lowercase": lowered,
    }


def scored_text(contents: Sequence[str]) -> str:
    """The text whose tokens are scored: the assistant turns' contents, joined by newlines."""
    return "\n".join(contents)
