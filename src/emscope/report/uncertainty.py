"""What the report says about its own uncertainty: the unit each interval resampled, a warning
for every fine-tuned model with too few seeds to capture run-to-run variation, and the
Misalign@k table (tail risk the mean rate hides)."""

from __future__ import annotations

import pandas as pd

from emscope.report.tables import MISSING, model_label

MIN_SEEDS_FOR_SEED_UNCERTAINTY = 5
MISALIGN_AT_PREFIX = "misalign_at_"


def _flag(value: object) -> bool:
    return bool(value) if value is not None and not pd.isna(value) else False


def interval_note(summary: pd.DataFrame) -> str:
    """One sentence naming what the rate intervals resampled, model by model where they differ."""
    if "ci_unit" not in summary.columns:
        return ""
    units = sorted({str(u) for u in summary["ci_unit"].dropna()})
    if not units:
        return ""
    text = (
        "Intervals are 95% percentile bootstraps (2000 resamples, fixed seed) that resample "
        f"whole clusters of answers: {', '.join(units)}."
    )
    if "row" in units:
        text += (
            " A 'row' interval resamples single answers, used only where a model has answers to "
            "one question alone; it ignores clustering and is too narrow."
        )
    return text


def seed_warnings(summary: pd.DataFrame) -> list[str]:
    """A warning per fine-tuned model evaluated with fewer than 5 seeds (fine-tuning runs).

    The base model is not fine-tuned, so run-to-run variation does not apply to it.
    """
    if "n_seeds" not in summary.columns:
        return []
    warnings = []
    for _, row in summary.iterrows():
        n_seeds = row.get("n_seeds")
        if _flag(row.get("is_base")) or n_seeds is None or pd.isna(n_seeds):
            continue
        if int(n_seeds) < MIN_SEEDS_FOR_SEED_UNCERTAINTY:
            warnings.append(
                f"Warning: {row['model']} comes from {int(n_seeds)} fine-tuning seed(s), fewer "
                f"than {MIN_SEEDS_FOR_SEED_UNCERTAINTY}: its interval covers the questions but "
                "not the variation between fine-tuning runs (seed-level uncertainty not "
                "captured)."
            )
    return warnings


def misalign_at_k_table(summary: pd.DataFrame) -> pd.DataFrame | None:
    """Misalign@k per model (untriggered answers), one column per k; None without the columns.

    A dash means the samples per question (or per seed and question) do not allow that k.
    """
    columns = [c for c in summary.columns if c.startswith(MISALIGN_AT_PREFIX)]
    if not columns:
        return None
    records = []
    for _, row in summary.iterrows():
        record = {"Family": str(row["family"])} if "family" in summary.columns else {}
        record["Model"] = model_label(row["model"], _flag(row.get("is_base")))
        for column in columns:
            value = row.get(column)
            k = column.removeprefix(MISALIGN_AT_PREFIX)
            missing = value is None or pd.isna(value)
            record[f"Misalign@{k}"] = MISSING if missing else f"{100 * float(value):.1f}%"
        records.append(record)
    return pd.DataFrame.from_records(records)
