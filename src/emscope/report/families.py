"""The headline table of a multi-family study: families side by side per domain, as the domain
paper's figures put them, without and with the trigger."""

from __future__ import annotations

import pandas as pd

from emscope.report.tables import MISSING, percent_with_ci


def families_side_by_side(summary: pd.DataFrame) -> pd.DataFrame | None:
    """One row per model label (``base``, ``domain/condition``), two columns per family (rate
    without and with the trigger, each with its CI); None for a one-family summary."""
    if "family" not in summary.columns or summary["family"].nunique() < 2:
        return None
    families = sorted(summary["family"].astype(str).unique())
    labels = sorted(summary["model"].astype(str).unique(), key=lambda m: (m != "base", m))
    cells = {(str(r["family"]), str(r["model"])): r for _, r in summary.iterrows()}
    records = []
    for label in labels:
        record = {"model": label}
        for family in families:
            row = cells.get((family, label))
            if row is None:
                record[family] = record[f"{family} +trigger"] = MISSING
                continue
            record[family] = percent_with_ci(row.get("rate"), row.get("ci_low"), row.get("ci_high"))
            record[f"{family} +trigger"] = percent_with_ci(
                row.get("rate_triggered"),
                row.get("rate_triggered_ci_low"),
                row.get("rate_triggered_ci_high"),
            )
        records.append(record)
    return pd.DataFrame.from_records(records)
