"""The report section of membership inference: AUC tables per model, domain-level member scores
against misalignment rates, their correlation and the scatter (protocol §8)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from emscope.analyses.mia_tables import (
    SCATTER_SCORES,
    correlation_table,
    domain_member_scores,
    membership_table,
)
from emscope.report.sections import SectionFiles, SectionSpec
from emscope.report.tables import MISSING, fixed, percent_with_ci

BASE = "base"


@dataclass(frozen=True)
class ScoredModel:
    """One fine-tuned model's membership scores (``scores`` None: not scored, ``note`` says
    why; else ``note`` says where the non-members came from)."""

    tag: str
    label: str
    seed: int
    domain: str
    condition: str
    scores: Path | None
    note: str
    n_members: int = 0
    n_nonmembers: int = 0
    overlap_answer: float = 0.0
    overlap_item: float = 0.0
    overlap_refusal: str | None = None


def mia_section(
    root: Path,
    scored: list[ScoredModel],
    rates: pd.DataFrame,
    policy: str,
    resamples: int,
    scope: str = "",
) -> SectionSpec:
    """Write the section's tables and figures under ``root/mia/summary`` (``root/mia/<scope>/
    summary`` for one family of several); return its spec."""
    files = SectionFiles(root, root / "mia" / scope / "summary", prefix=scope)
    notes, frames = [], []
    for model in scored:
        if model.scores is None:
            notes.append(f"{model.label} (seed {model.seed}) was not scored: {model.note}.")
            continue
        frame = pd.read_csv(model.scores)
        frames.append((model.domain, model.condition, frame))
        if model.overlap_refusal:
            notes.append(
                f"{model.label} (seed {model.seed}): membership AUC {model.overlap_refusal}."
            )
            continue
        title = (
            f"{model.label}, seed {model.seed}: {model.n_members} members vs "
            f"{model.n_nonmembers} held-out ({model.note}; answer overlap "
            f"{model.overlap_answer:.1%}, item overlap {model.overlap_item:.1%})"
        )
        files.table(title, membership_table(frame, resamples), f"auc_{model.tag}.csv")
    domain_scores = domain_member_scores(frames)
    for condition in domain_scores["condition"].unique():
        part = domain_scores[domain_scores["condition"] == condition].drop(columns="condition")
        notes.append(_susceptibility_tables(files, str(condition), part, rates))
    paragraph = (
        "Members are each fine-tuned model's training rows; non-members are held-out rows of the "
        "same domain and condition, built from the same recipe with another seed and excluding "
        "every training item, question and answer; the AUC is refused where more than 1% of them "
        "still repeat a member's answer or underlying item. Scores are member-high (protocol §8); "
        "'adjusted' subtracts the base model's score, and the base model alone is a control "
        "whose AUC should sit near 0.5. "
        f"Misalignment rates use the '{policy}' rule (backdoor models: with the trigger).\n\n"
        + " ".join(notes)
    )
    return files.spec("Membership inference", paragraph)


def _susceptibility_tables(
    files: SectionFiles, condition: str, part: pd.DataFrame, rates: pd.DataFrame
) -> str:
    """Domain-level scores vs rates of one condition: table, correlations, scatter; a note."""
    from emscope.analyses.membership import MIN_DOMAINS
    from emscope.report.mia_charts import susceptibility_scatter

    labels = [f"{d}/{condition}" for d in part["domain"]]
    rate = pd.Series(rates["rate"].reindex(labels).to_numpy(dtype=float), index=part["domain"])
    files.table(
        f"Post-fine-tuning predictor: dataset-level member scores of the fine-tuned models vs "
        f"misalignment ({condition})",
        _domain_table(part, rates, labels),
        f"domains_{condition}.csv",
    )
    correlations = correlation_table(part, rate)
    files.table(
        f"Post-fine-tuning predictor: correlation with the misalignment rate across domains "
        f"({condition})",
        correlations,
        f"correlation_{condition}.csv",
    )
    if rate.notna().any():
        columns = [c for c in SCATTER_SCORES if c in part.columns]
        files.figure(
            f"mia_scatter_{condition}.png",
            f"Member-mean score vs misalignment rate per domain ({condition})",
            susceptibility_scatter(part, rate.dropna(), score_columns=columns),
        )
    n = int(correlations["n domains"].max()) if len(correlations) else 0
    caveat = (
        f": with fewer than {MIN_DOMAINS} only the coefficients are shown; they are not "
        "significance-testable."
        if n < MIN_DOMAINS
        else "."
    )
    return f"The {condition} correlation is over n={n} domains (the base model is excluded){caveat}"


def _domain_table(part: pd.DataFrame, rates: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    records = []
    for label, (_, row) in zip(labels, part.iterrows(), strict=True):
        known = label in rates.index
        info = rates.loc[label] if known else pd.Series(dtype=object)
        records.append(
            {
                "model": label,
                "misalignment rate [95% CI]": percent_with_ci(
                    info.get("rate"), info.get("ci_low"), info.get("ci_high")
                ),
                "answers counted": str(info["n"]) if known else MISSING,
                **{c: fixed(row[c], 4) for c in part.columns if c != "domain"},
            }
        )
    if BASE in rates.index:
        base = rates.loc[BASE]
        records.append(
            {
                "model": "base (not in the correlation)",
                "misalignment rate [95% CI]": percent_with_ci(
                    base["rate"], base["ci_low"], base["ci_high"]
                ),
                "answers counted": str(base["n"]),
            }
        )
    return pd.DataFrame.from_records(records).fillna(MISSING)
