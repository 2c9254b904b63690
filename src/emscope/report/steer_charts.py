"""Steering charts as PNG bytes: transfer and cosine heatmaps, and a sweep line chart.

Drawn on bare ``Figure`` objects with the Agg canvas (no pyplot state), so they are safe to
make from any thread and leave no global figures behind.
"""

from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from emscope.errors import InputError

DPI = 150
CELL_IN = 0.9


def _png(figure: Figure) -> bytes:
    buffer = io.BytesIO()
    FigureCanvasAgg(figure).print_png(buffer)
    return buffer.getvalue()


def _require(frame: pd.DataFrame, columns: list[str]) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise InputError(f"the table lacks column(s) {', '.join(missing)}", field=missing[0])


def _heatmap(
    square: pd.DataFrame,
    *,
    title: str,
    colour_label: str,
    vmin: float,
    vmax: float,
    cmap: str,
    percent: bool,
) -> bytes:
    if square.empty:
        raise InputError("nothing to draw: the matrix is empty", field="matrix")
    values = square.to_numpy(dtype=np.float64)
    n_rows, n_cols = values.shape
    figure = Figure(
        figsize=(2.5 + CELL_IN * n_cols, 1.8 + CELL_IN * n_rows), dpi=DPI, layout="constrained"
    )
    axes = figure.add_subplot()
    image = axes.imshow(np.ma.masked_invalid(values), cmap=cmap, vmin=vmin, vmax=vmax)
    axes.set_xticks(range(n_cols), [str(c) for c in square.columns], rotation=45, ha="right")
    axes.set_yticks(range(n_rows), [str(i) for i in square.index])
    axes.set_xlabel(str(square.columns.name or ""))
    axes.set_ylabel(str(square.index.name or ""))
    for (row, col), value in np.ndenumerate(values):
        text = "n/a" if math.isnan(value) else (f"{value:.0%}" if percent else f"{value:.2f}")
        axes.text(col, row, text, ha="center", va="center", fontsize=8)
    figure.colorbar(image, ax=axes, label=colour_label)
    axes.set_title(title)
    return _png(figure)


def transfer_heatmap_png(matrix: pd.DataFrame, value: str = "misalignment_rate") -> bytes:
    """Rows = direction (whose model it came from), columns = target model, cells = ``value``.

    ``matrix`` is :func:`emscope.analyses.transfer.transfer_matrix`'s output; a cell without a
    rate (no used answers) shows "n/a".
    """
    _require(matrix, ["direction", "target", value])
    square = matrix.pivot(index="direction", columns="target", values=value).astype("float64")
    percent = value == "misalignment_rate"
    if percent:
        vmax, cmap = 1.0, "Reds"
    elif value == "mean_coherence":  # the judge's 0-100 scale
        vmax, cmap = 100.0, "Greens"
    else:
        vmax, cmap = float(np.nanmax(square.to_numpy()) or 1.0), "Reds"
    return _heatmap(
        square,
        title=f"Direction transfer: {value.replace('_', ' ')}",
        colour_label=value.replace("_", " "),
        vmin=0.0,
        vmax=vmax,
        cmap=cmap,
        percent=percent,
    )


def cosine_heatmap_png(square: pd.DataFrame, *, layer: int | None = None) -> bytes:
    """The square cosine-similarity matrix of :func:`direction_cosines`, on a -1..1 scale."""
    if list(square.index) != list(square.columns):
        raise InputError("a cosine matrix needs the same names on rows and columns", field="matrix")
    title = "Cosine similarity of directions" + ("" if layer is None else f" (block {layer})")
    return _heatmap(
        square,
        title=title,
        colour_label="cosine",
        vmin=-1.0,
        vmax=1.0,
        cmap="RdBu_r",
        percent=False,
    )


def sweep_chart_png(summary: pd.DataFrame) -> bytes:
    """Misalignment rate and mean coherence against scale, one line per (kind, layer set).

    ``summary`` is ``steering_sweep(...).summary``. Ablation (no scale) and the unsteered
    baseline are drawn as horizontal reference lines.
    """
    _require(summary, ["kind", "layers", "scale", "misalignment_rate", "mean_coherence"])
    figure = Figure(figsize=(10.0, 4.0), dpi=DPI, layout="constrained")
    panels = [("misalignment_rate", "misalignment rate"), ("mean_coherence", "mean coherence")]
    for position, (column, label) in enumerate(panels, start=1):
        axes = figure.add_subplot(1, 2, position)
        _sweep_panel(axes, summary, column)
        axes.set_xlabel("scale")
        axes.set_ylabel(label)
        if column == "misalignment_rate":
            axes.yaxis.set_major_formatter(lambda v, _: f"{v:.0%}")
        axes.legend(fontsize=7)
    return _png(figure)


def _sweep_panel(axes: Axes, summary: pd.DataFrame, column: str) -> None:
    values = pd.to_numeric(summary[column], errors="coerce")
    frame = summary.assign(**{column: values})
    for (kind, layers), group in frame.groupby(["kind", "layers"], sort=True):
        label = "unsteered" if kind == "none" else f"{kind} L{layers}"
        if group["scale"].isna().all() or kind == "none":
            axes.axhline(float(group[column].mean()), linestyle="--", linewidth=1, label=label)
            continue
        ordered = group.sort_values("scale")
        style = ":" if kind == "random" else "-"
        axes.plot(ordered["scale"], ordered[column], style, marker="o", label=label)
