"""From membership scores to evidence: AUC, TPR at low FPR, and domain-level susceptibility.

Scores are member-high (see :mod:`emscope.analyses.mia`). Two levels of analysis:

- example level: are training rows distinguishable from held-out rows? (:func:`membership_auc`,
  :func:`tpr_at_fpr`);
- domain level, the domain paper's claim (protocol §8): does a dataset-level score predict the
  domain's misalignment rate? (:func:`predict_susceptibility`). Its n is the number of domains,
  never the number of rows, since all rows of a domain share one rate.

Leave-one-domain-out AUC: domains are labelled *high* when their rate is strictly above the median
rate of all domains, *low* otherwise. For each domain in turn, a 1-D logistic regression (sklearn,
L2 with C=1 on the score standardized with the other domains' mean and sd) is fitted on the other
domains and gives the held-out domain's probability of *high*; the AUC is taken over these n
held-out probabilities. Each fold learns the sign of the relation, so a score that predicts
susceptibility in reverse also gets a high AUC: read the direction from the Spearman rho.
With no signal the LOO-AUC tends to fall *below* 0.5 (removing a domain moves the fitted
boundary away from it), so only values well above 0.5 are evidence. It needs at least 4
domains and 2 in each class, so every training fold keeps both classes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray

from emscope.errors import InputError

MIN_DOMAINS = 4
DEFAULT_FPRS = (0.01, 0.001)

FloatArray = NDArray[np.float64]


def _values(values: ArrayLike, field: str) -> FloatArray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if array.size == 0:
        raise InputError("no scores given", field=field)
    if not np.all(np.isfinite(array)):
        raise InputError(
            f"{int(np.sum(~np.isfinite(array)))} score(s) are NaN or infinite", field=field
        )
    return array


def auc(positive: ArrayLike, negative: ArrayLike) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos = np.asarray(positive, dtype=np.float64).ravel()
    neg = np.asarray(negative, dtype=np.float64).ravel()
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (pos.size * neg.size))


@dataclass(frozen=True)
class AucResult:
    """AUC with a percentile bootstrap interval (members and non-members resampled separately)."""

    auc: float
    ci_low: float
    ci_high: float
    n_members: int
    n_nonmembers: int


def membership_auc(
    member_scores: ArrayLike,
    nonmember_scores: ArrayLike,
    *,
    n_resamples: int = 2000,
    seed: int = 0,
    level: float = 0.95,
) -> AucResult:
    """AUC of member vs non-member scores with a seeded, stratified bootstrap CI.

    >>> membership_auc([3.0, 4.0], [1.0, 2.0], n_resamples=10).auc
    1.0
    """
    members = _values(member_scores, "member_scores")
    others = _values(nonmember_scores, "nonmember_scores")
    rng = np.random.default_rng(seed)
    stats = np.empty(n_resamples, dtype=np.float64)
    for i in range(n_resamples):
        stats[i] = auc(
            members[rng.integers(0, members.size, members.size)],
            others[rng.integers(0, others.size, others.size)],
        )
    tail = (1.0 - level) / 2.0
    low, high = np.quantile(stats, [tail, 1.0 - tail])
    return AucResult(auc(members, others), float(low), float(high), members.size, others.size)


@dataclass(frozen=True)
class TprResult:
    """TPR at a target FPR; ``tpr`` is None with a ``reason`` when it cannot be estimated."""

    fpr: float
    tpr: float | None
    threshold: float | None
    n_nonmembers: int
    reason: str | None = None


def min_nonmembers(fpr: float) -> int:
    """Non-members needed for an FPR of ``fpr`` to be a real operating point: ``ceil(1/fpr)``."""
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1), got {fpr}")
    return math.ceil(1.0 / fpr - 1e-9)


def tpr_at_fpr(member_scores: ArrayLike, nonmember_scores: ArrayLike, fpr: float) -> TprResult:
    """Share of members above the threshold that lets at most ``floor(fpr * n)`` non-members pass.

    The threshold is the ``(m+1)``-th highest non-member score with ``m = floor(fpr * n)``;
    an example is called a member when its score is strictly above it. Refused (``tpr=None``)
    with fewer than ``ceil(1/fpr)`` non-members.
    """
    members = _values(member_scores, "member_scores")
    others = _values(nonmember_scores, "nonmember_scores")
    needed = min_nonmembers(fpr)
    if others.size < needed:
        reason = (
            f"TPR at FPR {fpr:g} needs at least {needed} non-members, got {others.size}: "
            f"too few for that operating point"
        )
        return TprResult(fpr, None, None, others.size, reason)
    allowed = math.floor(fpr * others.size + 1e-9)
    threshold = float(np.sort(others)[::-1][allowed])
    return TprResult(fpr, float(np.mean(members > threshold)), threshold, others.size)


def _correlations(x: FloatArray, y: FloatArray) -> dict[str, float | None]:
    if np.ptp(x) == 0 or np.ptp(y) == 0:
        return {"spearman": None, "spearman_p": None, "pearson": None, "pearson_p": None}
    try:
        from scipy import stats
    except ImportError:
        return _numpy_correlations(x, y)
    spearman = stats.spearmanr(x, y)
    pearson = stats.pearsonr(x, y)
    return {
        "spearman": float(spearman.statistic),
        "spearman_p": float(spearman.pvalue),
        "pearson": float(pearson.statistic),
        "pearson_p": float(pearson.pvalue),
    }


def _average_ranks(values: FloatArray) -> FloatArray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = np.arange(1, values.size + 1)
    for value in np.unique(values):
        tied = values == value
        ranks[tied] = ranks[tied].mean()
    return ranks


def _numpy_correlations(x: FloatArray, y: FloatArray) -> dict[str, float | None]:
    """Fallback without scipy: the coefficients only, no p-values."""
    pearson = float(np.corrcoef(x, y)[0, 1])
    spearman = float(np.corrcoef(_average_ranks(x), _average_ranks(y))[0, 1])
    return {"spearman": spearman, "spearman_p": None, "pearson": pearson, "pearson_p": None}


def high_susceptibility(rates: FloatArray) -> NDArray[np.bool_]:
    """Domains whose rate is strictly above the median rate."""
    return rates > np.median(rates)


def leave_one_domain_out_auc(scores: ArrayLike, high: ArrayLike) -> float:
    """AUC of held-out probabilities from 1-D logistic regressions fitted without each domain."""
    from sklearn.linear_model import LogisticRegression

    x = np.asarray(scores, dtype=np.float64).ravel()
    y = np.asarray(high, dtype=bool).ravel()
    held_out = np.empty(x.size, dtype=np.float64)
    for i in range(x.size):
        train = np.arange(x.size) != i
        centre, spread = x[train].mean(), x[train].std()
        spread = spread if spread > 0 else 1.0
        model = LogisticRegression(C=1.0).fit(((x[train] - centre) / spread)[:, None], y[train])
        held_out[i] = model.predict_proba(np.array([[(x[i] - centre) / spread]]))[0, 1]
    return auc(held_out[y], held_out[~y])


@dataclass(frozen=True)
class SusceptibilityResult:
    """How well one dataset-level score predicts the domains' misalignment rates."""

    score: str
    n: int
    spearman: float | None
    spearman_p: float | None
    pearson: float | None
    pearson_p: float | None
    loo_auc: float
    n_high: int
    n_low: int


def _aligned(
    domain_scores: pd.DataFrame, rates: pd.Series, domain_column: str
) -> tuple[pd.DataFrame, pd.Series]:
    if domain_column not in domain_scores.columns:
        raise InputError(f"domain_scores has no {domain_column!r} column", field=domain_column)
    repeated = domain_scores[domain_column][domain_scores[domain_column].duplicated()]
    if not repeated.empty:
        raise InputError(
            f"domain_scores has several rows for {sorted(set(repeated))}: aggregate to one row "
            f"per domain first (domain_level_scores), the analysis is at domain level",
            field=domain_column,
        )
    frame = domain_scores.set_index(domain_column)
    common = [d for d in frame.index if d in rates.index]
    return frame.loc[common], rates.loc[common].astype(float)


def predict_susceptibility(
    domain_scores: pd.DataFrame,
    rates: pd.Series,
    *,
    score_columns: Sequence[str] | None = None,
    domain_column: str = "domain",
) -> list[SusceptibilityResult]:
    """Correlate each dataset-level score with the misalignment rate across domains.

    ``domain_scores`` has one row per domain (a ``domain`` column plus score columns); ``rates``
    is indexed by domain. Domains present in both, with a finite score and rate, are used; ``n``
    is their count. Refuses with fewer than 4 such domains or fewer than 2 per median class.
    """
    frame, rate = _aligned(domain_scores, rates, domain_column)
    columns = list(score_columns) if score_columns is not None else list(frame.columns)
    results = []
    for column in columns:
        if column not in frame.columns:
            raise InputError(f"domain_scores has no column {column!r}", field=column)
        x = frame[column].to_numpy(dtype=np.float64)
        y = rate.to_numpy(dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        x, y = x[keep], y[keep]
        _require_enough(column, x.size, y)
        high = high_susceptibility(y)
        results.append(
            SusceptibilityResult(
                score=column,
                n=int(x.size),
                loo_auc=leave_one_domain_out_auc(x, high),
                n_high=int(high.sum()),
                n_low=int((~high).sum()),
                **_correlations(x, y),
            )
        )
    return results


def _require_enough(column: str, n: int, rates: FloatArray) -> None:
    if n < MIN_DOMAINS:
        raise InputError(
            f"susceptibility needs at least {MIN_DOMAINS} domains with both a score and a "
            f"misalignment rate; {column!r} has {n}. A correlation over fewer domains means "
            f"nothing, and rows within a domain are not independent points",
            field=column,
        )
    high = high_susceptibility(rates)
    if min(high.sum(), (~high).sum()) < 2:
        raise InputError(
            f"leave-one-domain-out AUC needs at least 2 domains above and 2 at or below the "
            f"median rate; {column!r} has {int(high.sum())} above and {int((~high).sum())} not",
            field="rates",
        )


def susceptibility_table(results: Sequence[SusceptibilityResult]) -> pd.DataFrame:
    """One row per score, for reports."""
    return pd.DataFrame([r.__dict__ for r in results])


def domain_level_scores(
    example_scores: pd.DataFrame,
    *,
    domain_column: str = "domain",
    score_columns: Sequence[str],
    statistic: str = "mean",
) -> pd.DataFrame:
    """Aggregate example-level scores to one row per domain (``mean`` or ``median``)."""
    if statistic not in ("mean", "median"):
        raise InputError(
            f"statistic must be 'mean' or 'median', got {statistic!r}", field="statistic"
        )
    grouped = example_scores.groupby(domain_column, sort=True)[list(score_columns)]
    return grouped.agg(statistic).reset_index()
