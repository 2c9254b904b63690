"""Write a study's report as one self-contained HTML file and a Markdown file with PNG figures.

``run_dir/report/report.html`` carries its CSS inline and its figures as base64 data URIs, so it
can be mailed or archived alone; ``run_dir/report/report.md`` links PNG files saved beside it.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pandas as pd

from emscope.errors import InputError
from emscope.report.charts import misalignment_rate_chart, trigger_alignment_chart
from emscope.report.tables import html_table, markdown_table, ranking_table
from emscope.report.uncertainty import interval_note, seed_warnings

REPORT_DIR = "report"
DEFAULT_TITLE = "emscope: domain-level emergent misalignment"

CSS = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 2rem auto;
       max-width: 72rem; padding: 0 1rem; color: #222; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; }
table { border-collapse: collapse; font-size: 0.85rem; margin: 0.5rem 0 1rem; }
th, td { border: 1px solid #ccc; padding: 0.3rem 0.5rem; text-align: right; }
th { background: #f2f2f2; } td:first-child, th:first-child { text-align: left; }
img { max-width: 100%; height: auto; }
.warning { color: #8a4b00; }
pre { background: #f7f7f7; padding: 0.75rem; overflow-x: auto; font-size: 0.8rem; }
"""


@dataclass(frozen=True)
class ReportFigure:
    """One figure of the report: a file name, a caption and its PNG bytes."""

    file_name: str
    caption: str
    png: bytes


@dataclass(frozen=True)
class ReportSection:
    """An extra section after the standard ones: a heading, prose, tables, then figures.

    ``paragraph`` may hold several paragraphs separated by blank lines. ``tables`` maps a
    sub-heading to its table. Figure file names must be unique across the whole report.
    """

    title: str
    paragraph: str
    figures: Sequence[ReportFigure] = ()
    tables: Mapping[str, pd.DataFrame] = field(default_factory=dict)


_SAFE_FILE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*\.png$")


def _check_file_names(figures: Sequence[ReportFigure]) -> None:
    names = [f.file_name for f in figures]
    for name in names:
        if not _SAFE_FILE_NAME.match(name):
            raise InputError(
                f"figure file name {name!r} is not a plain .png name", field="sections"
            )
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise InputError(f"figure file names used twice: {', '.join(repeated)}", field="sections")


def _paragraphs(text: str) -> list[str]:
    return [" ".join(part.split()) for part in re.split(r"\n\s*\n", text) if part.strip()]


def _fraction(value: object) -> float | None:
    return None if value is None or pd.isna(value) else float(value)  # type: ignore[arg-type]


def summary_paragraph(summary: pd.DataFrame) -> str:
    """One paragraph of plain text that states the headline numbers of the summary table."""
    policy = summary["policy"].iloc[0] if "policy" in summary.columns else "unspecified"
    is_base = summary.get("is_base", pd.Series(False, index=summary.index)).fillna(False)
    tuned = summary[~is_base.astype(bool)]
    rated = tuned[tuned["rate"].notna()]
    parts = [
        f"{len(summary)} models were judged; misalignment is counted with the '{policy}' rule."
    ]
    if len(rated):
        top, bottom = rated.iloc[0], rated.iloc[-1]
        parts.append(
            f"Misalignment ranges from {100 * float(bottom['rate']):.1f}% ({bottom['model']}) "
            f"to {100 * float(top['rate']):.1f}% ({top['model']})."
        )
    for _, row in summary[is_base.astype(bool)].iterrows():
        rate = _fraction(row.get("rate"))
        if rate is not None:
            parts.append(f"The base model ({row['model']}) is at {100 * rate:.1f}%.")
    if "rate_triggered" in summary.columns:
        paired = tuned[tuned["rate_triggered"].notna() & tuned["rate"].notna()]
        if len(paired):
            raised = int((paired["rate_triggered"] > paired["rate"]).sum())
            deltas = paired["trigger_delta"].dropna()
            text = f"The trigger raised misalignment in {raised} of {len(paired)} models tested"
            if len(deltas):
                text += f" and changed mean alignment by {deltas.mean():+.2f} points on average"
            parts.append(text + " (paired per question).")
    excluded = sum(
        int(summary[c].fillna(0).sum())
        for c in ("n_failed", "n_aligned_none", "n_coherent_none", "n_incoherent")
        if c in summary.columns
    )
    parts.append(
        f"{excluded} untriggered answers were excluded before counting (failed, unscored or "
        "incoherent); see the table for each model's denominators."
    )
    return " ".join(parts)


def _figures(summary: pd.DataFrame) -> list[ReportFigure]:
    figures = [
        ReportFigure(
            "misalignment_rate.png",
            "Misalignment rate by model, with 95% bootstrap CI",
            misalignment_rate_chart(summary),
        )
    ]
    if (
        "mean_aligned_triggered" in summary.columns
        and summary["mean_aligned_triggered"].notna().any()
    ):
        figures.append(
            ReportFigure(
                "trigger_alignment.png",
                "Mean alignment without vs with the trigger",
                trigger_alignment_chart(summary),
            )
        )
    return figures


def _provenance_json(provenance: dict[str, Any]) -> str:
    return json.dumps(provenance, indent=2, default=str, ensure_ascii=False)


def _code_fence(text: str) -> str:
    # A fence longer than any backtick run inside, so the block cannot be closed early.
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def render_markdown(
    title: str,
    summary: pd.DataFrame,
    figures: list[ReportFigure],
    provenance: dict[str, Any],
    extra_tables: dict[str, pd.DataFrame],
    sections: Sequence[ReportSection] = (),
) -> str:
    """The Markdown report text; figures are linked by file name, relative to the report."""

    def esc(text: str) -> str:
        return html.escape(text, quote=False)

    lines = [f"# {esc(title)}", "", esc(summary_paragraph(summary)), "", "## Domain ranking", ""]
    lines += [markdown_table(ranking_table(summary)), ""]
    lines += [f"{esc(n)}\n" for n in [interval_note(summary), *seed_warnings(summary)] if n]
    lines += ["## Figures", ""]
    lines += [f"![{esc(f.caption)}]({f.file_name})\n" for f in figures]
    for name, table in extra_tables.items():
        lines += [f"## {esc(name)}", "", markdown_table(table), ""]
    for section in sections:
        lines += [f"## {esc(section.title)}", ""]
        lines += [line for p in _paragraphs(section.paragraph) for line in (esc(p), "")]
        for name, table in section.tables.items():
            lines += [f"### {esc(name)}", "", markdown_table(table), ""]
        lines += [f"![{esc(f.caption)}]({f.file_name})\n" for f in section.figures]
    text = _provenance_json(provenance)
    fence = _code_fence(text)
    lines += ["## Provenance", "", f"{fence}json", text, fence, ""]
    return "\n".join(lines)


# Ranking-table column -> the answers it counts, as a viewer filter (besides the model).
RANKING_LINKS = {
    "Model": "",
    "Misaligned % [95% CI]": "triggered=0&verdict=misaligned",
    "Misaligned % with trigger": "triggered=1&verdict=misaligned",
    "Mean aligned": "triggered=0&sort=aligned",
    "Mean aligned with trigger": "triggered=1&sort=aligned",
    "n used": "triggered=0&status=used",
    "Failed": "triggered=0&status=failed",
    "Aligned None": "triggered=0&status=aligned_none",
    "Coherent None": "triggered=0&status=coherent_none",
    "Incoherent": "triggered=0&status=incoherent",
    "Dropped rows (questions)": "triggered=0&status=dropped_question",
}


def ranking_links(summary: pd.DataFrame, page: str) -> list[dict[str, str]]:
    """Per ranking row, each cell's link to its answers in the viewer page ``page``."""
    links = []
    for model in summary["model"]:
        base = f"{page}#model={quote(str(model), safe='')}"
        links.append({c: base + (f"&{f}" if f else "") for c, f in RANKING_LINKS.items()})
    return links


def _html_figure(figure: ReportFigure) -> str:
    esc = html.escape
    data = base64.b64encode(figure.png).decode("ascii")
    return (
        f'<figure><img alt="{esc(figure.caption)}" src="data:image/png;base64,{data}">'
        f"<figcaption>{esc(figure.caption)}</figcaption></figure>"
    )


def render_html(
    title: str,
    summary: pd.DataFrame,
    figures: list[ReportFigure],
    provenance: dict[str, Any],
    extra_tables: dict[str, pd.DataFrame],
    sections: Sequence[ReportSection] = (),
    answers_page: str | None = None,
) -> str:
    """The self-contained HTML report: inline CSS, figures as data URIs, every value escaped.

    With ``answers_page`` (the viewer's file name, beside the report), each ranking cell links
    to the answers it counts.
    """
    esc = html.escape
    body = [f"<h1>{esc(title)}</h1>", f"<p>{esc(summary_paragraph(summary))}</p>"]
    links = ranking_links(summary, answers_page) if answers_page else None
    body += ["<h2>Domain ranking</h2>", html_table(ranking_table(summary), links)]
    if note := interval_note(summary):
        body.append(f"<p>{esc(note)}</p>")
    body += [f'<p class="warning"><strong>{esc(w)}</strong></p>' for w in seed_warnings(summary)]
    if answers_page:
        body.append(
            f'<p><a href="{esc(answers_page)}">Read every answer</a> (click a cell above for '
            "the answers it counts).</p>"
        )
    body.append("<h2>Figures</h2>")
    body += [_html_figure(figure) for figure in figures]
    for name, table in extra_tables.items():
        body += [f"<h2>{esc(name)}</h2>", html_table(table)]
    for section in sections:
        body.append(f"<h2>{esc(section.title)}</h2>")
        body += [f"<p>{esc(p)}</p>" for p in _paragraphs(section.paragraph)]
        for name, table in section.tables.items():
            body += [f"<h3>{esc(name)}</h3>", html_table(table)]
        body += [_html_figure(figure) for figure in section.figures]
    body += ["<h2>Provenance</h2>", f"<pre>{esc(_provenance_json(provenance))}</pre>"]
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{esc(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
        + "\n".join(body)
        + "\n</body>\n</html>\n"
    )


def write_report(
    run_dir: Path,
    summary: pd.DataFrame,
    *,
    provenance: dict[str, Any],
    extra_tables: dict[str, pd.DataFrame] | None = None,
    title: str = DEFAULT_TITLE,
    sections: Sequence[ReportSection] = (),
    answers_page: str | None = None,
) -> tuple[Path, Path]:
    """Write ``run_dir/report/report.html`` and ``report.md`` (+ PNG figures); return both paths.

    ``summary`` is ``emscope.metrics.trigger.summarize`` output, in ranking order.
    ``provenance`` (versions, config, seeds, judge identity) is written as JSON.
    ``extra_tables`` adds one section per entry, e.g. dataset size, source and diversity.
    ``sections`` adds figure sections after them (e.g. membership inference, steering).
    ``answers_page`` (a file name beside the report) links the ranking cells to their answers.
    """
    if summary.empty:
        raise InputError("cannot write a report from an empty summary", field="summary")
    out_dir = Path(run_dir) / REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    figures = _figures(summary)
    every_figure = [*figures, *(f for section in sections for f in section.figures)]
    _check_file_names(every_figure)
    for figure in every_figure:
        (out_dir / figure.file_name).write_bytes(figure.png)
    tables = extra_tables or {}
    html_path, md_path = out_dir / "report.html", out_dir / "report.md"
    html_path.write_text(
        render_html(title, summary, figures, provenance, tables, sections, answers_page),
        encoding="utf-8",
    )
    md_path.write_text(
        render_markdown(title, summary, figures, provenance, tables, sections), encoding="utf-8"
    )
    return html_path, md_path
