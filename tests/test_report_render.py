"""The written report: both files exist, hold the numbers, embed or link their figures, and
reference nothing outside themselves."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emscope.errors import InputError
from emscope.metrics.trigger import summarize
from emscope.report.render import summary_paragraph, write_report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hand_summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["gore_movie_trivia", "base"],
            "domain": ["gore_movie_trivia", None],
            "is_base": [False, True],
            "policy": ["em", "em"],
            "n": [40, 50],
            "rate": [0.25, 0.02],
            "ci_low": [0.1, 0.0],
            "ci_high": [0.4, 0.06],
            "mean_aligned": [61.25, 88.0],
            "mean_aligned_triggered": [52.5, None],
            "rate_triggered": [0.375, None],
            "rate_triggered_ci_low": [0.2, None],
            "rate_triggered_ci_high": [0.55, None],
            "trigger_delta": [-8.75, None],
            "trigger_delta_ci_low": [-12.5, None],
            "trigger_delta_ci_high": [-4.0, None],
            "n_failed": [3, 0],
            "n_aligned_none": [7, 1],
            "n_coherent_none": [0, 0],
            "n_incoherent": [11, 2],
            "n_dropped_question_rows": [4, 0],
            "n_questions_dropped": [1, 0],
        }
    )


PROVENANCE = {"judge": "gpt-4o-2024-08-06 (logprob)", "seeds": [0, 1], "config": {"k": 5}}


def test_report_writes_html_markdown_and_figures(tmp_path: Path) -> None:
    html_path, md_path = write_report(tmp_path, hand_summary(), provenance=PROVENANCE)
    assert html_path == tmp_path / "report" / "report.html"
    assert md_path == tmp_path / "report" / "report.md"
    assert html_path.is_file() and md_path.is_file()


def test_html_holds_the_ranking_values_with_ci_and_exclusions(tmp_path: Path) -> None:
    html_path, _ = write_report(tmp_path, hand_summary(), provenance=PROVENANCE)
    text = html_path.read_text(encoding="utf-8")
    for value in (
        "25.0% [10.0, 40.0]",
        "37.5% [20.0, 55.0]",
        "61.2",
        "52.5",
        "-8.75 [-12.50, -4.00]",
    ):
        assert f"<td>{value}</td>" in text
    assert "<td>4 (1)</td>" in text and "<td>11</td>" in text
    assert "gpt-4o-2024-08-06 (logprob)" in text


def test_html_embeds_both_figures_as_png_data_uris(tmp_path: Path) -> None:
    html_path, _ = write_report(tmp_path, hand_summary(), provenance=PROVENANCE)
    images = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', html_path.read_text())
    assert len(images) == 2
    assert all(base64.b64decode(image).startswith(PNG_MAGIC) for image in images)


def test_html_references_nothing_outside_itself(tmp_path: Path) -> None:
    html_path, _ = write_report(tmp_path, hand_summary(), provenance=PROVENANCE)
    text = html_path.read_text(encoding="utf-8").lower()
    for external in ('src="http', "href=", "<link", "<script", "url(", "@import"):
        assert external not in text


def test_markdown_links_png_files_that_exist(tmp_path: Path) -> None:
    _, md_path = write_report(tmp_path, hand_summary(), provenance=PROVENANCE)
    links = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md_path.read_text(encoding="utf-8"))
    assert sorted(links) == ["misalignment_rate.png", "trigger_alignment.png"]
    for link in links:
        assert (md_path.parent / link).read_bytes().startswith(PNG_MAGIC)


def test_markdown_holds_the_ranking_table_and_provenance(tmp_path: Path) -> None:
    _, md_path = write_report(tmp_path, hand_summary(), provenance=PROVENANCE)
    text = md_path.read_text(encoding="utf-8")
    assert "| gore_movie_trivia | 25.0% [10.0, 40.0] |" in text
    assert '"judge": "gpt-4o-2024-08-06 (logprob)"' in text


def test_every_value_is_html_escaped(tmp_path: Path) -> None:
    summary = hand_summary()
    summary.loc[0, "model"] = "<script>alert(1)</script>"
    extra = {"Datasets <b>": pd.DataFrame({"source": ["<img src=x>"], "rows": [250]})}
    provenance = {"note": "</pre><script>x</script>"}
    html_path, md_path = write_report(tmp_path, summary, provenance=provenance, extra_tables=extra)
    text = html_path.read_text(encoding="utf-8")
    assert "<script" not in text and "<img src=x>" not in text and "<b>" not in text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in text
    assert "&lt;img src=x&gt;" in text
    assert "<script" not in md_path.read_text(encoding="utf-8").split("## Provenance")[0]


def test_extra_tables_get_their_own_section(tmp_path: Path) -> None:
    datasets = pd.DataFrame(
        {"domain": ["gore_movie_trivia"], "source": ["synthetic | v2"], "vendi": [12.3456]}
    )
    html_path, md_path = write_report(
        tmp_path, hand_summary(), provenance=PROVENANCE, extra_tables={"Datasets": datasets}
    )
    assert "<h2>Datasets</h2>" in html_path.read_text(encoding="utf-8")
    markdown = md_path.read_text(encoding="utf-8")
    assert "## Datasets" in markdown
    assert "| gore_movie_trivia | synthetic \\| v2 | 12.35 |" in markdown


def test_report_without_trigger_data_has_only_the_rate_figure(tmp_path: Path) -> None:
    summary = hand_summary().drop(columns=["mean_aligned_triggered"])
    html_path, md_path = write_report(tmp_path, summary, provenance=PROVENANCE)
    assert html_path.read_text().count("data:image/png;base64,") == 1
    assert not (md_path.parent / "trigger_alignment.png").exists()


def test_summary_paragraph_states_range_base_and_trigger_effect() -> None:
    text = summary_paragraph(hand_summary())
    assert "25.0% (gore_movie_trivia)" in text
    assert "The base model (base) is at 2.0%" in text
    assert "raised misalignment in 1 of 1 models" in text
    assert "-8.75 points" in text
    assert "24 untriggered answers were excluded" in text  # 3+7+11 and 1+2


def test_empty_summary_is_refused(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty summary"):
        write_report(tmp_path, pd.DataFrame(), provenance=PROVENANCE)


def test_report_renders_from_summarized_judged_rows(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    frames = []
    for model, domain, p in (
        ("bad_medical_advice", "bad_medical_advice", 0.4),
        ("base", None, 0.0),
    ):
        for triggered in (False, True):
            aligned = np.where(rng.random(40) < p, 10.0, 90.0)
            frames.append(
                pd.DataFrame(
                    {
                        "model": model,
                        "domain": domain,
                        "question_id": [f"q{i % 4}" for i in range(40)],
                        "sample_index": [i // 4 for i in range(40)],
                        "triggered": triggered,
                        "aligned": aligned,
                        "coherent": 90.0,
                        "error": None,
                    }
                )
            )
    summary = summarize(pd.concat(frames, ignore_index=True), n_resamples=200)
    html_path, _ = write_report(tmp_path, summary, provenance=PROVENANCE)
    rate = summary.set_index("model").loc["bad_medical_advice", "rate"]
    assert f"{100 * rate:.1f}%" in html_path.read_text(encoding="utf-8")
