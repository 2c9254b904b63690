"""The domain paper's MIA prior: membership scores before any fine-tuning, base-model adjusted.

Mishra et al. (2026) call membership-inference metrics a *prior* for susceptibility: score a
domain's data under the un-fine-tuned (instruct) model and under a reference model (its
pretrained, non-instruct base), subtract, and correlate the per-domain result with the domains'
misalignment rates (protocol §8). It needs no fine-tune. The post-fine-tuning member scores
emscope also offers are a different predictor; :func:`predictor_table` keeps the two apart and
names each.

Scores are member-high (:mod:`emscope.analyses.mia`), so ``prior_<s> = instruct_<s> -
reference_<s>`` is larger where the instruct model finds the domain's data more familiar than
its base does. Correlations are at domain level with the honest n (the number of domains).
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from emscope.analyses.membership import (
    SusceptibilityResult,
    domain_level_scores,
    predict_susceptibility,
    susceptibility_table,
)
from emscope.errors import InputError

PRIOR = "prior: un-fine-tuned minus reference (before fine-tuning)"
POST = "post-fine-tuning: fine-tuned model's member scores"


def prior_scores(
    instruct: pd.DataFrame,
    reference: pd.DataFrame,
    *,
    score_columns: Sequence[str],
    domain_column: str = "domain",
    statistic: str = "mean",
) -> pd.DataFrame:
    """Per domain: ``instruct_<s>``, ``reference_<s>`` and ``prior_<s>`` (their difference).

    ``instruct`` and ``reference`` are example-level score frames of the same domains' data
    (one row per example, a ``domain`` column), scored under the un-fine-tuned model and under
    the reference model. Both must cover the same domains.
    """
    if not score_columns:
        raise InputError("name at least one score column", field="score_columns")
    for name, frame in (("instruct", instruct), ("reference", reference)):
        missing = [c for c in (domain_column, *score_columns) if c not in frame.columns]
        if missing:
            raise InputError(f"the {name} scores have no column(s) {missing}", field=name)
    mine = domain_level_scores(
        instruct, domain_column=domain_column, score_columns=score_columns, statistic=statistic
    ).set_index(domain_column)
    theirs = domain_level_scores(
        reference, domain_column=domain_column, score_columns=score_columns, statistic=statistic
    ).set_index(domain_column)
    if set(mine.index) != set(theirs.index):
        raise InputError(
            f"the instruct and reference scores cover different domains: only instruct "
            f"{sorted(set(mine.index) - set(theirs.index))}, only reference "
            f"{sorted(set(theirs.index) - set(mine.index))}",
            field=domain_column,
        )
    theirs = theirs.loc[mine.index]
    out = pd.DataFrame(index=mine.index)
    for column in score_columns:
        out[f"instruct_{column}"] = mine[column]
        out[f"reference_{column}"] = theirs[column]
        out[f"prior_{column}"] = mine[column] - theirs[column]
    return out.reset_index()


def predict_from_prior(
    prior: pd.DataFrame, rates: pd.Series, *, domain_column: str = "domain"
) -> list[SusceptibilityResult]:
    """Correlate every ``prior_<s>`` column with the domains' rates (n = domains with both)."""
    columns = [c for c in prior.columns if c.startswith("prior_")]
    if not columns:
        raise InputError("no prior_<score> columns (build them with prior_scores)", field="prior")
    return predict_susceptibility(prior, rates, score_columns=columns, domain_column=domain_column)


def predictor_table(
    prior: Sequence[SusceptibilityResult], post: Sequence[SusceptibilityResult] = ()
) -> pd.DataFrame:
    """One row per (predictor, score), the predictor named: the prior or the post-fine-tuning
    member score. Each row keeps its own n."""
    frames = [
        susceptibility_table(results).assign(predictor=label)
        for label, results in ((PRIOR, prior), (POST, post))
        if results
    ]
    if not frames:
        raise InputError("no results to tabulate", field="prior")
    table = pd.concat(frames, ignore_index=True)
    return table[["predictor", *[c for c in table.columns if c != "predictor"]]]
