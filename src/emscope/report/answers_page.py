"""Write ``report/answers.html``: every judged answer of a run in one self-contained page.

The page carries its script, styles and data inline (no network, no CDN): the payload of
:func:`emscope.report.answers_data.answers_payload` as JSON, gzip-compressed and base64-encoded
when it is large (the page inflates it with the browser's ``DecompressionStream``).

>>> write_answers_page(Path("runs/demo"))  # doctest: +SKIP
PosixPath('runs/demo/report/answers.html')
"""

from __future__ import annotations

import base64
import gzip
import html
import json
from importlib import resources
from pathlib import Path
from typing import Any, cast

import pandas as pd

from emscope.errors import InputError
from emscope.metrics.rates import Policy, get_policy
from emscope.report.answers_data import answers_payload

ANSWERS_FILE = "answers.html"
# The viewer's script, in this order, inlined as one <script>.
SCRIPTS = ("viewer_data.js", "viewer_render.js")
# Payloads above this many bytes of JSON are embedded gzip-compressed.
COMPRESS_OVER_BYTES = 1_000_000


def _asset(name: str) -> str:
    return (resources.files("emscope.report") / "assets" / name).read_text(encoding="utf-8")


def _latest_by_key(directory: Path, fields: tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """Per key, the chosen fields of the last row written in ``directory/*.jsonl``."""
    rows: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.jsonl")) if directory.is_dir() else []:
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                    key = str(row["key"])
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise InputError(f"corrupt row: {exc}", file=path, line=number) from exc
                rows[key] = {f: row.get(f) for f in fields}
    return rows


def load_run_answers(
    run_dir: Path,
) -> tuple[pd.DataFrame, dict[str, dict[str, Any]], dict[str, dict[str, Any]]]:
    """A run's judged rows, its samples and its judge records by key, as stored."""
    rows_path = run_dir / "metrics" / "judged_rows.csv"
    if not rows_path.is_file():
        raise InputError("no judged rows yet: run the study first", file=rows_path)
    rows = pd.read_csv(rows_path, keep_default_na=True)
    samples = _latest_by_key(run_dir / "samples", ("system", "trigger"))
    judgements = _latest_by_key(run_dir / "judgements", ("judge", "mode", "aligned", "coherent"))
    return rows, samples, judgements


def _script_safe(text: str) -> str:
    # "<" only occurs inside JSON strings, where \u003c means the same: no "</script>" possible.
    return text.replace("<", "\\u003c")


def render_answers_html(
    payload: dict[str, Any], *, compress_over: int = COMPRESS_OVER_BYTES
) -> str:
    """The viewer page for ``payload``; the data is compressed when its JSON exceeds
    ``compress_over`` bytes."""
    data = json.dumps(payload, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    if len(data.encode("utf-8")) > compress_over:
        packed = gzip.compress(data.encode("utf-8"), compresslevel=5, mtime=0)
        encoding, body = "gzip-base64", base64.b64encode(packed).decode("ascii")
    else:
        encoding, body = "json", _script_safe(data)
    title = html.escape(str(payload.get("title", "emscope answers")))
    script = "\n".join(_asset(name) for name in SCRIPTS)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_asset('answers.css')}</style>\n</head>\n<body>\n"
        f'<h1>{title}</h1>\n<p id="status">Loading the answers…</p>\n'
        '<section id="filters"></section>\n<section id="compare" hidden></section>\n'
        '<nav id="pager"></nav>\n'
        '<table id="answers"><thead></thead><tbody></tbody></table>\n'
        f'<script id="payload" type="application/json" data-encoding="{encoding}">'
        f"{body}</script>\n<script>{script}</script>\n</body>\n</html>\n"
    )


def write_answers_page(
    run_dir: Path, *, policy: str = "em", compress_over: int = COMPRESS_OVER_BYTES
) -> Path:
    """Write ``run_dir/report/answers.html`` from the run's stored files; return its path."""
    get_policy(policy)
    rows, samples, judgements = load_run_answers(Path(run_dir))
    payload = answers_payload(
        rows,
        samples,
        judgements,
        policy=cast(Policy, policy),
        title=f"emscope answers: {Path(run_dir).resolve().name}",
    )
    out = Path(run_dir) / "report" / ANSWERS_FILE
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_answers_html(payload, compress_over=compress_over), encoding="utf-8")
    return out
