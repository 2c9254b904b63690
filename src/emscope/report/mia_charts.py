"""Scatter of dataset-level membership score vs misalignment rate, one panel per score.

Drawn on a bare ``Figure`` with the Agg canvas (no pyplot state); every point is labelled with its
domain and each panel's title gives Spearman's rho with the honest n (number of domains).
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from emscope.errors import InputError

POINT_COLOUR = "#c0392b"
PANEL_IN = 4.0
MAX_COLUMNS = 3
DPI = 150


def _rank_correlation(x: np.ndarray, y: np.ndarray) -> float | None:
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    ranks_x = pd.Series(x).rank().to_numpy()
    ranks_y = pd.Series(y).rank().to_numpy()
    return float(np.corrcoef(ranks_x, ranks_y)[0, 1])


def susceptibility_figure(
    domain_scores: pd.DataFrame,
    rates: pd.Series,
    *,
    score_columns: Sequence[str],
    domain_column: str = "domain",
) -> Figure:
    """The scatter figure: x = dataset-level score (member-high), y = misalignment rate (%)."""
    if not score_columns:
        raise InputError("no score columns to plot", field="score_columns")
    missing = [c for c in (domain_column, *score_columns) if c not in domain_scores.columns]
    if missing:
        raise InputError(f"domain_scores lacks column(s) {', '.join(missing)}", field=missing[0])
    frame = domain_scores.set_index(domain_column)
    domains = [d for d in frame.index if d in rates.index]
    if not domains:
        raise InputError("no domain has both a score and a misalignment rate", field="rates")
    n_cols = min(MAX_COLUMNS, len(score_columns))
    n_rows = math.ceil(len(score_columns) / n_cols)
    figure = Figure(figsize=(PANEL_IN * n_cols, PANEL_IN * n_rows), layout="constrained")
    FigureCanvasAgg(figure)
    for position, column in enumerate(score_columns, start=1):
        axes = figure.add_subplot(n_rows, n_cols, position)
        x = frame.loc[domains, column].to_numpy(dtype=np.float64)
        y = 100.0 * rates.loc[domains].to_numpy(dtype=np.float64)
        keep = np.isfinite(x) & np.isfinite(y)
        axes.scatter(x[keep], y[keep], color=POINT_COLOUR, s=24)
        for name, xi, yi in zip(np.asarray(domains)[keep], x[keep], y[keep], strict=True):
            axes.annotate(
                str(name), (xi, yi), textcoords="offset points", xytext=(4, 3), fontsize=7
            )
        rho = _rank_correlation(x[keep], y[keep])
        rho_text = "n/a" if rho is None else f"{rho:+.2f}"
        axes.set_title(f"{column}  (Spearman {rho_text}, n={int(keep.sum())})", fontsize=9)
        axes.set_xlabel(f"{column} (larger = more member-like)", fontsize=8)
        axes.set_ylabel("misalignment rate (%)", fontsize=8)
        axes.grid(alpha=0.3)
    return figure


def susceptibility_scatter(
    domain_scores: pd.DataFrame,
    rates: pd.Series,
    *,
    score_columns: Sequence[str],
    domain_column: str = "domain",
) -> bytes:
    """:func:`susceptibility_figure` as PNG bytes (no Software stamp, so output is reproducible)."""
    figure = susceptibility_figure(
        domain_scores, rates, score_columns=score_columns, domain_column=domain_column
    )
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()
