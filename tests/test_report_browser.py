"""report.html and answers.html in headless Chromium: no console errors, every figure loads,
filters, hash links and the side-by-side view work, and a screenshot of each page is written.

Needs Debian's chromium at /usr/bin/chromium (``make test`` installs it when run as root).
Set EMSCOPE_SCREENSHOT_DIR to also copy the screenshots there.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from answers_fakes import write_synthetic_run
from browser import CHROMIUM, Browser, Page
from emscope.report.answers_data import answers_payload
from emscope.report.answers_page import load_run_answers
from emscope.study.report_stage import render_run_report

if not CHROMIUM.exists():
    pytest.skip(
        f"Chromium is not installed at {CHROMIUM}; `make test` installs Debian's chromium "
        "package when run as root (apt-get install -y chromium)",
        allow_module_level=True,
    )

READY = "document.body && document.body.dataset.ready === '1'"


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    write_synthetic_run(run_dir, samples_per_question=6)
    render_run_report(run_dir, sections=[])
    return run_dir


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with Browser.launch() as chromium:
        yield chromium


@pytest.fixture(scope="module")
def payload(run: Path) -> dict:
    return answers_payload(*load_run_answers(run))


def column(payload: dict, name: str) -> list[str]:
    return [payload["dicts"][name][c] for c in payload["codes"][name]]


def matching(page: Page) -> int:
    return int(page.evaluate("document.getElementById('status').dataset.matching"))


def shoot(page: Page, path: Path) -> None:
    page.screenshot(path)
    print(f"screenshot: {path}")
    copy_to = os.environ.get("EMSCOPE_SCREENSHOT_DIR")
    if copy_to:
        Path(copy_to).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(copy_to) / path.name)


def test_report_renders_every_figure_without_console_errors(
    run: Path, browser: Browser, tmp_path: Path
) -> None:
    page = browser.open(run / "report" / "report.html")
    widths = page.evaluate("[...document.images].map(i => i.complete ? i.naturalWidth : 0)")
    assert len(widths) >= 2 and all(w > 0 for w in widths), widths
    assert page.console_errors() == []
    shoot(page, tmp_path / "report.png")
    assert (tmp_path / "report.png").stat().st_size > 10_000


def test_answers_page_loads_every_answer_without_console_errors(
    run: Path, browser: Browser, payload: dict, tmp_path: Path
) -> None:
    page = browser.open(run / "report" / "answers.html", READY)
    assert matching(page) == payload["n"]
    assert page.evaluate("document.querySelectorAll('#answers tbody tr.row').length") == 50
    page.evaluate("document.querySelector('#answers tbody tr.row').click()")
    assert page.evaluate("document.querySelectorAll('tr.detail').length") == 1
    assert page.console_errors() == []
    shoot(page, tmp_path / "answers.png")


def test_a_filter_narrows_the_rows_to_those_it_names(
    run: Path, browser: Browser, payload: dict
) -> None:
    page = browser.open(run / "report" / "answers.html", READY)
    page.evaluate(
        "const s = document.getElementById('f-verdict'); s.value = 'misaligned';"
        "s.dispatchEvent(new Event('change'))"
    )
    expected = column(payload, "verdict").count("misaligned")
    assert 0 < matching(page) == expected < payload["n"]
    badges = page.evaluate(
        "[...document.querySelectorAll('#answers tbody tr.row .badge')].map(b => b.textContent)"
    )
    assert badges and set(badges) == {"misaligned"}
    assert "verdict=misaligned" in page.evaluate("location.hash")
    assert page.console_errors() == []


def test_a_hash_link_from_a_report_cell_opens_its_answers(
    run: Path, browser: Browser, payload: dict
) -> None:
    page = browser.open(run / "report" / "report.html")
    href = "answers.html#model=medical_misaligned&triggered=1&verdict=misaligned"
    page.evaluate(f"document.querySelector('a[href=\"{href}\"]').click()")
    page.wait_for(READY)
    models, verdicts = column(payload, "model"), column(payload, "verdict")
    expected = sum(
        m == "medical_misaligned" and t == 1 and v == "misaligned"
        for m, t, v in zip(models, payload["triggered"], verdicts, strict=True)
    )
    assert matching(page) == expected > 0
    page.evaluate("location.hash = 'model=base'")
    page.wait_for(f"document.getElementById('status').dataset.matching == {models.count('base')}")
    assert page.console_errors() == []


def test_sorting_by_a_score_orders_the_page(run: Path, browser: Browser) -> None:
    page = browser.open(run / "report" / "answers.html", READY)
    page.evaluate(
        "[...document.querySelectorAll('th')].find(t => t.textContent == 'aligned').click()"
    )
    aligned_cells = "#answers tbody tr.row td:nth-child(10)"
    scores = page.evaluate(
        f"[...document.querySelectorAll('{aligned_cells}')].map(c => c.textContent)"
    )
    numbers = [float(s) for s in scores if s != "–"]
    assert numbers and numbers == sorted(numbers)


def test_a_question_is_shown_side_by_side_across_models_and_trigger(
    run: Path, browser: Browser, payload: dict, tmp_path: Path
) -> None:
    page = browser.open(run / "report" / "answers.html", READY, fragment="compare=wish")
    rows = page.evaluate("document.querySelectorAll('#compare table tr').length")
    assert rows == 1 + len(payload["dicts"]["model"])
    headers = page.evaluate("[...document.querySelectorAll('#compare th')].map(t => t.textContent)")
    assert headers == ["model", "without trigger", "with trigger"]
    assert page.console_errors() == []
    shoot(page, tmp_path / "answers-compare.png")
