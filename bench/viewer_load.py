"""Time the answers viewer on a large synthetic run in headless Chromium.

    PYTHONPATH=src:tests python bench/viewer_load.py --answers 100000

Writes a run of scripted answers and logprob-judge output (tests/answers_fakes.py), builds
report/answers.html, opens it in /usr/bin/chromium and prints: the time to write the page, its
size, the time from navigation start to the first rendered page, and the time to apply a
filter, a text search and a sort (each including the re-render of one page).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "src"), str(ROOT / "tests")]

from answers_fakes import QUESTIONS, write_synthetic_run  # noqa: E402
from browser import Browser  # noqa: E402
from emscope.report.answers_page import write_answers_page  # noqa: E402

READY = "document.body && document.body.dataset.ready === '1'"
TIMED = "(() => {{ const t = performance.now(); {action}; return performance.now() - t; }})()"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--answers", type=int, default=100_000)
    parser.add_argument("--run-dir", type=Path, default=None)
    parser.add_argument("--screenshot", type=Path, default=None)
    parser.add_argument("--reuse", action="store_true", help="keep an existing run's answers")
    args = parser.parse_args()
    run_dir = args.run_dir or Path(tempfile.mkdtemp(prefix="emscope-viewer-bench-"))
    domains = ("medical", "finance", "sports", "legal", "security", "gore_movie_trivia")
    groups = 1 + 2 * len(domains) * 2  # base, then each domain x 2 seeds x with/without trigger
    per_question = max(1, round(args.answers / (groups * len(QUESTIONS))))
    start = time.perf_counter()
    if not (args.reuse and (run_dir / "metrics" / "judged_rows.csv").is_file()):
        rows = write_synthetic_run(
            run_dir,
            domains=domains,
            seeds=(0, 1),
            samples_per_question=per_question,
            filler_words=40,
        )
        print(
            f"synthetic run: {len(rows)} answers in {run_dir} ({time.perf_counter() - start:.1f}s)"
        )
    start = time.perf_counter()
    page_path = write_answers_page(run_dir)
    size = page_path.stat().st_size / 1e6
    print(f"answers.html written in {time.perf_counter() - start:.1f}s, {size:.1f} MB")
    with Browser.launch() as browser:
        wall = time.perf_counter()
        page = browser.open(page_path, READY)
        wall = time.perf_counter() - wall
        first = float(page.evaluate("document.body.dataset.firstPageMs"))
        print(f"first page rendered {first:.0f} ms after navigation start (wall {wall:.1f}s)")
        marks = page.evaluate("window.emscopeTimings")
        print(
            "  of which: HTML parsed and script started {start:.0f} ms, data decoded {decoded:.0f}"
            " ms, typed arrays built {built:.0f} ms, first page {firstPage:.0f} ms".format(**marks)
        )
        actions = {
            "filter verdict=misaligned": "emscopeViewer.setFilter('verdict', 'misaligned')",
            "filter + model": "emscopeViewer.setFilter('model', 'medical_misaligned')",
            "text search (first: builds the lower-cased index)": (
                "emscopeViewer.update({q: 'borrow', filters: {}})"
            ),
            "text search (again)": "emscopeViewer.update({q: 'medication'})",
            "sort by aligned": "emscopeViewer.update({q: '', sort: 'aligned', desc: true})",
            "next page": "emscopeViewer.update({page: 1})",
        }
        for label, action in actions.items():
            ms = page.evaluate(TIMED.format(action=action))
            shown = page.evaluate("document.getElementById('status').dataset.matching")
            print(f"{label}: {ms:.0f} ms ({shown} matching)")
        errors = page.console_errors()
        print(f"console errors: {len(errors)}")
        if args.screenshot:
            page.screenshot(args.screenshot)
            print(f"screenshot: {args.screenshot}")


if __name__ == "__main__":
    main()
