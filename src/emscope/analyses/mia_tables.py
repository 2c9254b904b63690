"""Membership inference across a study, as tables: AUCs per score, per-model misalignment rates,
domain-level member scores and their correlation with the rates. Pure: frames in, frames out."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pandas as pd

from emscope.data.schema import ChatExample
from emscope.metrics.rates import Policy
from emscope.report.tables import MISSING, fixed

HEADLINE_SCORES = ("loss", "min_k", "min_k_pp", "zlib")
SCATTER_SCORES = ("loss", "adjusted_loss", "min_k_pp", "adjusted_min_k_pp")
TPR_FPRS = (0.01, 0.001)


def member_sample(rows: list[ChatExample], limit: int | None, seed: int) -> list[ChatExample]:
    """All training rows, or a seeded sample of ``limit`` of them in their file order."""
    if limit is None or limit >= len(rows):
        return rows
    chosen = sorted(random.Random(f"mia-members:{seed}").sample(range(len(rows)), limit))
    return [rows[i] for i in chosen]


def _auc_cell(members: pd.Series, others: pd.Series, resamples: int) -> str:
    from emscope.analyses.membership import membership_auc

    result = membership_auc(members.dropna(), others.dropna(), n_resamples=resamples)
    return f"{result.auc:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}]"


def _tpr_cell(members: pd.Series, others: pd.Series, fpr: float) -> str:
    from emscope.analyses.membership import tpr_at_fpr

    result = tpr_at_fpr(members.dropna(), others.dropna(), fpr)
    if result.tpr is None:
        return f"refused: {result.n_nonmembers} non-members < {round(1 / fpr)}"
    return f"{result.tpr:.3f}"


def membership_table(scores: pd.DataFrame, resamples: int) -> pd.DataFrame:
    """Per score: AUC [95% CI] under the fine-tuned model, reference-adjusted, and the base
    model alone (a control that never saw either set), and TPR at low FPR where estimable."""
    members, others = scores[scores["member"]], scores[~scores["member"]]
    names = [n for n in (*HEADLINE_SCORES, "lowercase") if scores[n].notna().any()]
    records = []
    for name in names:
        record = {
            "score": name,
            "fine-tuned AUC [95% CI]": _auc_cell(members[name], others[name], resamples),
            "adjusted AUC": _auc_cell(
                members[f"adjusted_{name}"], others[f"adjusted_{name}"], resamples
            ),
            "base AUC (control)": _auc_cell(
                members[f"reference_{name}"], others[f"reference_{name}"], resamples
            ),
        }
        for fpr in TPR_FPRS:
            record[f"TPR@FPR {fpr:g}"] = _tpr_cell(members[name], others[name], fpr)
        records.append(record)
    return pd.DataFrame.from_records(records)


def model_rates(rows: pd.DataFrame, policy: Policy, resamples: int) -> pd.DataFrame:
    """Per model label: the misalignment rate used here (triggered for backdoor models)."""
    from emscope.metrics.trigger import summarize

    summary = summarize(rows, policy=policy, n_resamples=resamples)
    out = []
    for _, row in summary.iterrows():
        backdoor = str(row["model"]).endswith("/backdoor")
        use_trigger = backdoor and "rate_triggered" in row and pd.notna(row["rate_triggered"])
        prefix = "rate_triggered" if use_trigger else "rate"
        out.append(
            {
                "model": row["model"],
                "rate": row[prefix],
                "ci_low": row[f"{prefix}_ci_low" if use_trigger else "ci_low"],
                "ci_high": row[f"{prefix}_ci_high" if use_trigger else "ci_high"],
                "n": row["n_triggered" if use_trigger else "n"],
                "with_trigger": use_trigger,
            }
        )
    return pd.DataFrame.from_records(out).set_index("model")


def rank_correlations(x: np.ndarray, y: np.ndarray) -> tuple[float | None, float | None]:
    """(Spearman rho, Pearson r) of two samples; None where a side is constant or n < 2."""
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None, None
    ranks_x, ranks_y = pd.Series(x).rank().to_numpy(), pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(ranks_x, ranks_y)[0, 1]), float(np.corrcoef(x, y)[0, 1])


def correlation_table(domain_scores: pd.DataFrame, rates: pd.Series) -> pd.DataFrame:
    """Per dataset-level score: n domains, Spearman and Pearson with the rate, and, from 4
    domains on, p-values and leave-one-domain-out AUC (:func:`predict_susceptibility`)."""
    from emscope.analyses.membership import MIN_DOMAINS, predict_susceptibility
    from emscope.errors import InputError

    frame = domain_scores.set_index("domain")
    records = []
    for column in [c for c in frame.columns if c != "condition"]:
        x = frame[column].to_numpy(dtype=np.float64)
        y = rates.reindex(frame.index).to_numpy(dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        n = int(keep.sum())
        rho, r = rank_correlations(x[keep], y[keep])
        record: dict[str, Any] = {
            "score (member mean)": column,
            "n domains": n,
            "Spearman rho": fixed(rho),
            "Pearson r": fixed(r),
            "Spearman p": MISSING,
            "LOO-AUC": MISSING,
        }
        if n < MIN_DOMAINS:
            record["note"] = (
                f"n={n}: coefficients only, not significance-testable; LOO-AUC needs "
                f"{MIN_DOMAINS} domains"
            )
        else:
            try:
                result = predict_susceptibility(
                    domain_scores[["domain", column]], rates, score_columns=[column]
                )[0]
                record.update(
                    {
                        "Spearman p": fixed(result.spearman_p),
                        "LOO-AUC": fixed(result.loo_auc),
                        "note": "",
                    }
                )
            except InputError as exc:
                record["note"] = exc.message
        records.append(record)
    return pd.DataFrame.from_records(records)


def domain_member_scores(scored: list[tuple[str, str, pd.DataFrame]]) -> pd.DataFrame:
    """Mean member score per (domain, condition), raw and adjusted, averaged over seeds;
    ``scored`` holds one ``(domain, condition, scores frame)`` per scored model."""
    records = []
    for domain, condition, frame in scored:
        members = frame[frame["member"]]
        columns = [n for n in HEADLINE_SCORES if members[n].notna().any()]
        means = {c: members[c].mean() for c in columns}
        means |= {f"adjusted_{c}": members[f"adjusted_{c}"].mean() for c in columns}
        records.append({"domain": domain, "condition": condition, **means})
    if not records:
        return pd.DataFrame(columns=["domain", "condition"])
    frame = pd.DataFrame.from_records(records)
    return frame.groupby(["domain", "condition"], sort=False).mean().reset_index()
