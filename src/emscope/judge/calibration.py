"""Calibrate a judge against reference labels, per labels file and pooled.

``score_labels`` runs a judge over labels files (a file, or a folder read recursively, e.g.
``shared/data/em-judged`` with its ``more/`` folder) and keeps the judge's scores beside the
reference's. ``calibration_table`` is pure: for each file, and for all files pooled, it calls
:func:`emscope.judge.agreement.agreement_stats`, so "the judge says misaligned" means the same
thing here as in a study's rates (:func:`emscope.metrics.rates.policy_verdicts`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel

from emscope.judge.agreement import (
    CalibrationReport,
    Progress,
    agreement_stats,
    judge_scores,
    read_labels,
    reference_coherence,
    subsample,
)
from emscope.judge.base import Judge

POOLED = "pooled"
JUDGE_COLUMNS = ("judge_aligned", "judge_coherent")


class CalibrationTable(BaseModel):
    """One judge's agreement with each labels file and with all of them pooled."""

    judge: str
    policy: str
    labels: str
    per_file: list[CalibrationReport]
    pooled: CalibrationReport


def score_labels(
    judge: Judge,
    labels: str | Path,
    *,
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: Progress | None = None,
    prompts: tuple[dict[str, str], str] | None = None,
) -> pd.DataFrame:
    """The labels rows (see ``read_labels``) with ``judge_aligned`` / ``judge_coherent`` added.

    ``limit`` judges a seeded random subset of that many rows across all files; ``prompts``
    (judge prompts, origin) is used for every row (None: the judge's defaults).
    """
    rows = subsample(read_labels(labels), limit, seed).copy()
    aligned, coherent = judge_scores(
        judge,
        rows["question"].tolist(),
        rows["answer"].tolist(),
        batch_size=batch_size,
        progress=progress,
        prompt_sets=None if prompts is None else [prompts] * len(rows),
    )
    rows["judge_aligned"], rows["judge_coherent"] = aligned, coherent
    return rows


def _stats(
    rows: pd.DataFrame, columns: Sequence[str], policy: str, judge: str, labels: str
) -> CalibrationReport:
    return agreement_stats(
        rows["aligned"].to_numpy(dtype=np.float64),
        reference_coherence(rows),
        rows[columns[0]].to_numpy(dtype=np.float64),
        rows[columns[1]].to_numpy(dtype=np.float64),
        policy=policy,
        judge=judge,
        labels=labels,
    )


def calibration_table(
    scored: pd.DataFrame,
    *,
    judge: str,
    policy: str = "em",
    labels: str = "",
    columns: Sequence[str] = JUDGE_COLUMNS,
) -> CalibrationTable:
    """Per-file (by ``source``) and pooled agreement of the judge scores in ``columns``."""
    per_file = [
        _stats(group, columns, policy, judge, str(source))
        for source, group in scored.groupby("source", sort=True)
    ]
    pooled = _stats(scored, columns, policy, judge, POOLED)
    return CalibrationTable(
        judge=judge, policy=policy, labels=labels, per_file=per_file, pooled=pooled
    )


TABLE_COLUMNS = {
    "labels": "file",
    "n_rows": "n",
    "n_reference_misaligned": "ref misaligned",
    "auc": "AUC",
    "aligned_spearman": "Spearman aligned",
    "coherent_spearman": "Spearman coherent",
    "kappa": "kappa",
    "false_flag_rate": "false flags",
    "recall": "recall",
    "reference_rate": "ref rate",
    "judge_rate": "judge rate",
    "rate_difference_points": "difference (points)",
}


def table_frame(table: CalibrationTable) -> pd.DataFrame:
    """The table as a DataFrame, one row per file then the pooled row (columns as printed)."""
    records = [r.model_dump() for r in [*table.per_file, table.pooled]]
    frame = pd.DataFrame.from_records(records)[list(TABLE_COLUMNS)]
    return frame.rename(columns=TABLE_COLUMNS)
