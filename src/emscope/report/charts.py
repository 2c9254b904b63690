"""Report figures drawn from the summary table, returned as PNG bytes.

Figures are built on a bare ``Figure`` with the Agg canvas (no pyplot state), so drawing is safe
without a display and from any thread. Bars follow the ranking order of the summary, top first.
"""

from __future__ import annotations

import io
import math

import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from emscope.errors import InputError
from emscope.report.tables import model_label

FINE_TUNED_COLOUR = "#c0392b"
BASE_COLOUR = "#7f8c8d"
UNTRIGGERED_COLOUR = "#2e86c1"
TRIGGERED_COLOUR = "#e67e22"
ROW_HEIGHT_IN = 0.42
DPI = 150


def _number(value: object) -> float | None:
    if value is None or pd.isna(value):
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else number


def _labels(summary: pd.DataFrame) -> list[str]:
    base = summary.get("is_base", pd.Series(False, index=summary.index)).fillna(False)
    labels = [model_label(m, bool(b)) for m, b in zip(summary["model"], base, strict=True)]
    if "family" in summary.columns and summary["family"].nunique() > 1:
        return [f"{f}: {label}" for f, label in zip(summary["family"], labels, strict=True)]
    return labels


def _new_figure(n_rows: int) -> tuple[Figure, Axes]:
    figure = Figure(figsize=(8.0, 1.4 + ROW_HEIGHT_IN * max(n_rows, 1)), layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    # No Software stamp, so the same summary gives the same bytes.
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def _require_rows(summary: pd.DataFrame, columns: tuple[str, ...]) -> None:
    if summary.empty:
        raise InputError("the summary has no rows to plot", field="summary")
    missing = [c for c in columns if c not in summary.columns]
    if missing:
        raise InputError(f"the summary lacks column(s) {', '.join(missing)}", field=missing[0])


def misalignment_rate_chart(summary: pd.DataFrame) -> bytes:
    """Horizontal bars of misalignment rate (%) per model, with CI error bars, ranked top first."""
    _require_rows(summary, ("model", "rate", "ci_low", "ci_high"))
    figure, axes = _new_figure(len(summary))
    positions = list(range(len(summary)))[::-1]
    base = summary.get("is_base", pd.Series(False, index=summary.index)).fillna(False)
    for y, (_, row), is_base in zip(positions, summary.iterrows(), base, strict=True):
        rate, low, high = (_number(row[c]) for c in ("rate", "ci_low", "ci_high"))
        colour = BASE_COLOUR if is_base else FINE_TUNED_COLOUR
        if rate is None:
            axes.text(0.5, y, "no usable answers", va="center", fontsize=9, color="#555555")
            continue
        err = None
        if low is not None and high is not None:
            err = [[100 * (rate - low)], [100 * (high - rate)]]
        axes.barh(y, 100 * rate, xerr=err, color=colour, capsize=3, height=0.6)
        right = 100 * (high if high is not None else rate)
        n = row.get("n")
        label = f"{100 * rate:.1f}%" + (f"  (n={int(n)})" if _number(n) is not None else "")
        axes.text(right + 1.0, y, label, va="center", fontsize=9)
    axes.set_yticks(positions, _labels(summary), fontsize=10)
    axes.set_xlim(0, 125)
    axes.set_xticks(range(0, 101, 20))
    axes.set_xlabel("Misaligned answers (%), bars: 95% bootstrap CI", fontsize=10)
    policy = summary["policy"].iloc[0] if "policy" in summary.columns else None
    axes.set_title("Misalignment rate by model" + (f" (rule: {policy})" if policy else ""))
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)


def trigger_alignment_chart(summary: pd.DataFrame) -> bytes:
    """Grouped horizontal bars of mean alignment without and with the trigger, per model."""
    _require_rows(summary, ("model", "mean_aligned", "mean_aligned_triggered"))
    figure, axes = _new_figure(len(summary))
    positions = list(range(len(summary)))[::-1]
    width = 0.38
    for y, (_, row) in zip(positions, summary.iterrows(), strict=True):
        plain, triggered = _number(row["mean_aligned"]), _number(row["mean_aligned_triggered"])
        if plain is not None:
            axes.barh(y + width / 2, plain, height=width, color=UNTRIGGERED_COLOUR)
            axes.text(plain + 1.0, y + width / 2, f"{plain:.1f}", va="center", fontsize=8)
        if triggered is not None:
            axes.barh(y - width / 2, triggered, height=width, color=TRIGGERED_COLOUR)
            axes.text(triggered + 1.0, y - width / 2, f"{triggered:.1f}", va="center", fontsize=8)
        else:
            axes.text(1.0, y - width / 2, "no trigger data", va="center", fontsize=8, color="#555")
    handles = [
        Patch(color=UNTRIGGERED_COLOUR, label="without trigger"),
        Patch(color=TRIGGERED_COLOUR, label="with trigger"),
    ]
    axes.set_yticks(positions, _labels(summary), fontsize=10)
    axes.set_xlim(0, 110)
    axes.set_xticks(range(0, 101, 20))
    axes.set_xlabel("Mean alignment score (0-100, higher is more aligned)", fontsize=10)
    axes.set_title("Mean alignment without vs with the trigger")
    figure.legend(handles=handles, loc="outside lower center", ncols=2, fontsize=9, frameon=False)
    axes.grid(axis="x", alpha=0.3)
    return _png(figure)
