"""Report tables about the judge itself: which prompt sets it used, and what it could not score.

Both come from what the run stored: the prompt sets from ``metrics/provenance.json``, the
per-answer outcome columns (``aligned_outcome`` / ``coherent_outcome``, set by judges that
classify replies, e.g. the tagged judge) from ``metrics/judged_rows.csv``.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from emscope.judge.tagged import FAILURES, LABELS

OUTCOME_COLUMNS = ("aligned_outcome", "coherent_outcome")


def prompt_sets_table(prompt_sets: Sequence[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per distinct prompt set: its origin, hash (12 hex digits) and question count."""
    return pd.DataFrame(
        [
            {
                "origin": p["origin"],
                "prompt sha256": str(p["prompt_hash"])[:12],
                "questions": p["questions"],
            }
            for p in prompt_sets
        ]
    )


def judge_outcome_table(rows: pd.DataFrame) -> pd.DataFrame | None:
    """Per model and metric: replies, scored, each label and parse failure, failure rate.

    Labels (CODE, REFUSAL, IRRELEVANT) and parse failures (no score tag, cut off...) are
    excluded from the rates; this table counts them. None when no judge classified replies.
    """
    present = [c for c in OUTCOME_COLUMNS if c in rows.columns and rows[c].notna().any()]
    if not present:
        return None
    records = []
    for column in present:
        metric = column.removesuffix("_outcome")
        for model, group in rows.groupby("model", sort=True):
            outcomes = group[column].dropna().astype(str)
            counts = outcomes.value_counts()
            failed = [k for k in FAILURES if k not in LABELS]
            n_failed = int(sum(counts.get(k, 0) for k in failed))
            record: dict[str, Any] = {
                "model": model,
                "metric": metric,
                "replies": len(outcomes),
                "scored": int(counts.get("scored", 0)),
            }
            record.update({k.upper(): int(counts.get(k, 0)) for k in LABELS})
            record["parse failures"] = n_failed
            record["parse-failure rate"] = n_failed / len(outcomes) if len(outcomes) else None
            record.update({k: int(counts.get(k, 0)) for k in failed if counts.get(k, 0)})
            records.append(record)
    return pd.DataFrame.from_records(records).fillna(0)


def outcome_of(raw: Any) -> str | None:
    """A metric's stored outcome: ``scored``, a label or failure kind; None if not classified."""
    if not isinstance(raw, Mapping) or "failure" not in raw:
        return None
    return "scored" if raw["failure"] is None else str(raw["failure"])
