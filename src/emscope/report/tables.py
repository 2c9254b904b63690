"""Tables for the report: the domain ranking as display strings, and Markdown / HTML writers.

Every cell is a string by the time it is written, and every writer escapes it, so a model name
or a config value can never inject markup into the report.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence

import pandas as pd

MISSING = "–"


def _is_missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def model_label(model: object, is_base: bool) -> str:
    """A model's display name; the base model is marked unless its name already says so."""
    name = str(model)
    return f"{name} (base model)" if is_base and "base" not in name.lower() else name


def format_value(value: object) -> str:
    """A cell as text: floats to 4 significant digits, None/NaN as a dash."""
    if _is_missing(value):
        return MISSING
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.4g}" if math.isfinite(value) else str(value)
    return str(value)


def fixed(value: object, digits: int = 3) -> str:
    """A number with ``digits`` decimals, or the dash when missing."""
    return MISSING if _is_missing(value) else f"{float(value):.{digits}f}"  # type: ignore[arg-type]


def percent_with_ci(rate: object, low: object = None, high: object = None) -> str:
    """``12.5% [8.0, 17.1]`` (the interval when both ends are known), or the dash."""
    return _percent_with_ci(rate, low, high)


def _percent_with_ci(rate: object, low: object, high: object) -> str:
    if _is_missing(rate):
        return MISSING
    text = f"{100 * float(rate):.1f}%"  # type: ignore[arg-type]
    if not _is_missing(low) and not _is_missing(high):
        text += f" [{100 * float(low):.1f}, {100 * float(high):.1f}]"  # type: ignore[arg-type]
    return text


def _points_with_ci(value: object, low: object, high: object) -> str:
    if _is_missing(value):
        return MISSING
    text = f"{float(value):+.2f}"  # type: ignore[arg-type]
    if not _is_missing(low) and not _is_missing(high):
        text += f" [{float(low):+.2f}, {float(high):+.2f}]"  # type: ignore[arg-type]
    return text


def _score(value: object) -> str:
    return MISSING if _is_missing(value) else f"{float(value):.1f}"  # type: ignore[arg-type]


def _count(row: pd.Series, column: str) -> str:
    value = row.get(column)
    return MISSING if _is_missing(value) else str(int(value))


def ranking_table(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as the report's domain ranking: one display row per model (and family, when
    the summary has one), ranking order kept."""
    records = []
    for _, row in summary.iterrows():
        is_base = not _is_missing(row.get("is_base")) and bool(row.get("is_base"))
        model = model_label(row["model"], is_base)
        family = {"Family": str(row["family"])} if "family" in summary.columns else {}
        records.append(
            {
                **family,
                "Model": model,
                "Misaligned % [95% CI]": _percent_with_ci(
                    row.get("rate"), row.get("ci_low"), row.get("ci_high")
                ),
                "Misaligned % with trigger": _percent_with_ci(
                    row.get("rate_triggered"),
                    row.get("rate_triggered_ci_low"),
                    row.get("rate_triggered_ci_high"),
                ),
                "Mean aligned": _score(row.get("mean_aligned")),
                "Mean aligned with trigger": _score(row.get("mean_aligned_triggered")),
                "Trigger Δ aligned [95% CI]": _points_with_ci(
                    row.get("trigger_delta"),
                    row.get("trigger_delta_ci_low"),
                    row.get("trigger_delta_ci_high"),
                ),
                "n used": _count(row, "n"),
                "Failed": _count(row, "n_failed"),
                "Aligned None": _count(row, "n_aligned_none"),
                "Coherent None": _count(row, "n_coherent_none"),
                "Incoherent": _count(row, "n_incoherent"),
                "Dropped rows (questions)": (
                    f"{_count(row, 'n_dropped_question_rows')} "
                    f"({_count(row, 'n_questions_dropped')})"
                ),
            }
        )
    return pd.DataFrame.from_records(records)


def _cells(df: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = [format_value(c) for c in df.columns]
    body = [[format_value(v) for v in row] for row in df.itertuples(index=False, name=None)]
    return header, body


def _markdown_cell(text: str) -> str:
    flat = " ".join(text.split())
    return html.escape(flat, quote=False).replace("|", "\\|")


def markdown_table(df: pd.DataFrame) -> str:
    """A GitHub-flavoured Markdown table; pipes, newlines and markup in cells are escaped."""
    header, body = _cells(df)
    lines = [
        "| " + " | ".join(_markdown_cell(h) for h in header) + " |",
        "|" + "|".join(" --- " for _ in header) + "|",
    ]
    lines += ["| " + " | ".join(_markdown_cell(c) for c in row) + " |" for row in body]
    return "\n".join(lines)


def html_table(df: pd.DataFrame, links: Sequence[Mapping[str, str]] | None = None) -> str:
    """An HTML table with every header and cell escaped.

    ``links``, one mapping per row, turns the cells of the named columns into links to the
    given (escaped) addresses.
    """
    header, body = _cells(df)
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    columns = [str(c) for c in df.columns]
    rows = []
    for number, row in enumerate(body):
        row_links = links[number] if links is not None else {}
        cells = []
        for column, cell in zip(columns, row, strict=True):
            text = html.escape(cell)
            href = row_links.get(column)
            if href is not None:
                text = f'<a href="{html.escape(href)}">{text}</a>'
            cells.append(f"<td>{text}</td>")
        rows.append("<tr>" + "".join(cells) + "</tr>\n")
    return f"<table>\n<thead><tr>{head}</tr></thead>\n<tbody>\n{''.join(rows)}</tbody>\n</table>"
