"""answers.html: one self-contained file (script, styles, data inline), written by every report,
with the report's table cells linking into it; `emscope view` opens or serves it."""

from __future__ import annotations

import base64
import gzip
import json
import re
import threading
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
from typer.testing import CliRunner

from answers_fakes import write_synthetic_run
from emscope.cli import app
from emscope.commands.view import serve
from emscope.metrics.trigger import summarize
from emscope.report.answers_page import render_answers_html, write_answers_page
from emscope.study.report_stage import render_run_report

PAYLOAD_TAG = re.compile(
    r'<script id="payload" type="application/json" data-encoding="([a-z0-9-]+)">(.*?)</script>',
    re.DOTALL,
)


def embedded_payload(page: str) -> dict:
    """The data a page carries, decoded the way the page's script decodes it."""
    match = PAYLOAD_TAG.search(page)
    assert match, "no payload script"
    encoding, body = match.groups()
    if encoding == "gzip-base64":
        return json.loads(gzip.decompress(base64.b64decode(body)))
    assert encoding == "json"
    return json.loads(body)


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    run_dir = tmp_path_factory.mktemp("run")
    write_synthetic_run(run_dir, samples_per_question=6)
    render_run_report(run_dir, sections=[])
    return run_dir


def test_every_report_writes_the_answers_page_beside_it(run: Path) -> None:
    page = run / "report" / "answers.html"
    assert page.is_file() and (run / "report" / "report.html").is_file()
    payload = embedded_payload(page.read_text(encoding="utf-8"))
    assert payload["n"] == len(pd.read_csv(run / "metrics" / "judged_rows.csv"))


def test_the_page_references_nothing_outside_itself(run: Path) -> None:
    page = (run / "report" / "answers.html").read_text(encoding="utf-8")
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", page)
    assert "<link" not in page and "@import" not in page
    assert len(re.findall(r"<script", page)) == 2  # the payload and the inline viewer


def test_report_cells_link_to_their_answers_in_the_viewer(run: Path) -> None:
    report = (run / "report" / "report.html").read_text(encoding="utf-8")
    model = "medical_misaligned"
    assert f'href="answers.html#model={model}&amp;triggered=1&amp;verdict=misaligned"' in report
    assert f'href="answers.html#model={model}&amp;triggered=0&amp;status=incoherent"' in report
    assert 'href="answers.html#model=base"' in report


def test_large_payloads_are_embedded_compressed_and_decode_to_the_same_data(run: Path) -> None:
    plain = write_answers_page(run)
    small = embedded_payload(plain.read_text(encoding="utf-8"))
    packed = write_answers_page(run, compress_over=0).read_text(encoding="utf-8")
    assert 'data-encoding="gzip-base64"' in packed
    assert embedded_payload(packed) == small


def test_markup_in_an_answer_cannot_close_the_data_script() -> None:
    payload = {"title": "t", "n": 1, "answer": ["</script><script>alert(1)</script>"]}
    page = render_answers_html(payload)
    assert "</script><script>alert(1)" not in page
    assert embedded_payload(page)["answer"] == payload["answer"]


def test_view_without_opening_prints_the_page_and_writes_it_when_missing(run: Path) -> None:
    (run / "report" / "answers.html").unlink()
    result = CliRunner().invoke(app, ["view", str(run), "--no-open"])
    assert result.exit_code == 0, result.output
    assert "answers.html" in result.output
    assert (run / "report" / "answers.html").is_file()


def test_view_refuses_a_directory_without_judged_answers(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["view", str(tmp_path), "--no-open"])
    assert result.exit_code == 2
    assert "judged answers" in result.output


def test_the_local_server_serves_the_page_on_loopback(run: Path) -> None:
    server = serve(run / "report")
    host, port = server.server_address[:2]
    assert host == "127.0.0.1"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/answers.html", timeout=10) as r:
            body = r.read()
    finally:
        server.shutdown()
        server.server_close()
    assert body == (run / "report" / "answers.html").read_bytes()


def test_the_summary_counts_with_the_studys_metrics_settings(tmp_path: Path) -> None:
    """``metrics: {policy, bootstrap_resamples}`` of the stored study decide the headline rates,
    on the run's own report and on every re-render."""
    frame = write_synthetic_run(tmp_path, samples_per_question=6)
    provenance_path = tmp_path / "metrics" / "provenance.json"
    provenance = json.loads(provenance_path.read_text(encoding="utf-8"))
    for policy in ("em", "domain_paper"):
        provenance["study"]["metrics"] = {"policy": policy, "bootstrap_resamples": 150}
        provenance_path.write_text(json.dumps(provenance), encoding="utf-8")
        render_run_report(tmp_path, sections=[])
        summary = pd.read_csv(tmp_path / "metrics" / "summary.csv")
        assert set(summary["policy"]) == {policy}
    # The domain paper's rule counts incoherent low-alignment answers the EM rule drops.
    em = summarize(frame, policy="em", n_resamples=150)
    paper = summarize(frame, policy="domain_paper", n_resamples=150)

    def counts(table: pd.DataFrame) -> dict[str, int]:
        return dict(zip(table["model"], table["n"].astype(int), strict=True))

    assert counts(summary) == counts(paper) != counts(em)
