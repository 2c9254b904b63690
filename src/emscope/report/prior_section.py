"""The report section of the membership-inference prior (pre-fine-tuning): per domain, the
training rows' scores under the un-fine-tuned model and under the reference (non-instruct)
model, their difference, and its correlation with the domains' misalignment rates (protocol §8).
The post-fine-tuning predictor (the fine-tuned models' member scores) is in the membership
inference section; the two are named apart."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emscope.analyses.mia_tables import HEADLINE_SCORES, correlation_table
from emscope.analyses.prior import PRIOR, prior_scores
from emscope.report.sections import SectionFiles, SectionSpec
from emscope.report.tables import MISSING, fixed, percent_with_ci

TITLE = "Membership-inference prior (before fine-tuning)"


def prior_frames(scores: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """A scored-rows frame (``score_with_reference`` output with a ``domain`` column) split
    into the un-fine-tuned model's and the reference model's score frames, and the scores."""
    names = [n for n in HEADLINE_SCORES if n in scores.columns and scores[n].notna().any()]
    instruct = scores[["domain", *names]]
    reference = scores[["domain", *[f"reference_{n}" for n in names]]]
    reference = reference.rename(columns={f"reference_{n}": n for n in names})
    return instruct, reference, names


def prior_section(
    root: Path,
    scored: list[tuple[str, str, pd.DataFrame]],
    rates: pd.DataFrame,
    *,
    model: str,
    reference: str,
    policy: str,
    scope: str = "",
) -> SectionSpec:
    """Write the section's tables under ``root/mia_prior[/scope]/summary``; return its spec.

    ``scored`` holds one ``(domain, condition, scores)`` per domain and condition; ``rates`` is
    :func:`emscope.analyses.mia_tables.model_rates` output (indexed by ``domain/condition``).
    """
    files = SectionFiles(root, root / "mia_prior" / scope / "summary", prefix=scope)
    notes = []
    for condition in dict.fromkeys(c for _, c, _ in scored):
        frames = [f.assign(domain=d) for d, c, f in scored if c == condition]
        instruct, ref_scores, names = prior_frames(pd.concat(frames, ignore_index=True))
        prior = prior_scores(instruct, ref_scores, score_columns=names)
        labels = [f"{d}/{condition}" for d in prior["domain"]]
        rate = pd.Series(rates["rate"].reindex(labels).to_numpy(dtype=float), index=prior["domain"])
        files.table(
            f"Pre-fine-tuning prior per domain ({condition}): scores of the training rows under "
            "the un-fine-tuned model, the reference model, and their difference",
            _domain_table(prior, rates, labels),
            f"prior_domains_{condition}.csv",
        )
        columns = ["domain", *[f"prior_{n}" for n in names]]
        correlations = correlation_table(prior[columns], rate)
        correlations = correlations.rename(columns={"score (member mean)": "prior score"})
        correlations.insert(0, "predictor", PRIOR)
        files.table(
            f"Pre-fine-tuning prior: correlation with the misalignment rate across domains "
            f"({condition})",
            correlations,
            f"prior_correlation_{condition}.csv",
        )
        n = int(correlations["n domains"].max()) if len(correlations) else 0
        notes.append(f"The {condition} correlation is over n={n} domains.")
    paragraph = (
        "A predictor computable before any fine-tuning (the domain paper's prior): each domain's "
        f"training rows scored under the un-fine-tuned model ({model}) and under the reference "
        f"model ({reference}, its non-instruction-tuned base); prior_<score> is the first minus "
        "the second (member-high, so larger means the instruct model finds the domain's data "
        "more familiar than its base does). Domain means are correlated with the domains' "
        f"misalignment rates ('{policy}' rule; backdoor models: with the trigger), with n = the "
        "number of domains. The post-fine-tuning predictor (the fine-tuned models' own member "
        "scores) is in the membership inference section.\n\n" + " ".join(notes)
    )
    return files.spec(TITLE, paragraph)


def _domain_table(prior: pd.DataFrame, rates: pd.DataFrame, labels: list[str]) -> pd.DataFrame:
    records = []
    for label, (_, row) in zip(labels, prior.iterrows(), strict=True):
        known = label in rates.index
        info = rates.loc[label] if known else pd.Series(dtype=object)
        records.append(
            {
                "domain": str(row["domain"]),
                "misalignment rate [95% CI]": percent_with_ci(
                    info.get("rate"), info.get("ci_low"), info.get("ci_high")
                ),
                "answers counted": str(info["n"]) if known else MISSING,
                **{c: fixed(row[c], 4) for c in prior.columns if c != "domain"},
            }
        )
    return pd.DataFrame.from_records(records)
