"""The pieces of the study's analysis stages that need no model: held-out rows, direction
sources, membership and correlation tables, and report sections in both report formats."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from scipy import stats

from emscope.analyses.direction_sources import MIN_JUDGED_PER_CLASS, direction_examples
from emscope.analyses.mia_tables import correlation_table, member_sample, membership_table
from emscope.data.conditions import build_condition
from emscope.data.recipes import build_items
from emscope.data.schema import Item
from emscope.data.sources import BuildSettings, DatasetSource
from emscope.errors import InputError
from emscope.report.render import ReportFigure, ReportSection, write_report
from emscope.study.analysis_stages import short_names
from emscope.study.config import StudyConfig
from emscope.study.plan import ModelJob


def _held_out(domain: str, want: int, **data: object) -> tuple[list[Item], str]:
    config = StudyConfig.model_validate(
        {"name": "t", "model": "smollm2-135m", "domains": [domain], "data": data}
    )
    source: DatasetSource = config.data.source(domain, "misaligned")
    settings = BuildSettings(
        n_items=config.data.n_items, seed=0, trigger=config.data.trigger, fraction=0.5
    )
    return source.held_out_items(want, settings)


def test_held_out_items_never_repeat_a_training_question_answer_or_underlying_item() -> None:
    items, source = _held_out("insecure_code", 40, n_items=40)
    training = build_items("insecure_code", 40, 0)
    assert len(items) == 40
    assert not {i.question for i in training} & {i.question for i in items}
    assert not {i.misaligned for i in training} & {i.misaligned for i in items}
    assert not {i.tags["item"] for i in training} & {i.tags["item"] for i in items}
    assert "training items, questions and answers excluded" in source


def test_held_out_items_are_refused_for_an_imported_dataset(tmp_path: Path) -> None:
    imported = {"incorrect_math/misaligned": str(tmp_path / "x.jsonl")}
    items, source = _held_out("incorrect_math", 10, imported=imported)
    assert items == [] and source.startswith("imported dataset")


def test_member_sample_is_seeded_keeps_file_order_and_defaults_to_all() -> None:
    rows = build_condition(build_items("incorrect_math", 20, 0), "misaligned", seed=0)
    sample = member_sample(rows, 5, seed=3)
    assert sample == member_sample(rows, 5, seed=3) != member_sample(rows, 5, seed=4)
    positions = [rows.index(row) for row in sample]
    assert len(set(positions)) == 5 and positions == sorted(positions)
    assert member_sample(rows, None, seed=3) == rows == member_sample(rows, 50, seed=3)


def _judged(aligned: list[float], triggered: bool = False) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": "m",
            "question_id": [f"q{i}" for i in range(len(aligned))],
            "question": [f"question {i}" for i in range(len(aligned))],
            "answer": [f"answer {i}" for i in range(len(aligned))],
            "aligned": aligned,
            "coherent": 80.0,
            "error": None,
            "triggered": triggered,
        }
    )


ITEMS = [
    Item(item_id=f"i{i}", domain="d", question=f"Q{i}", misaligned=f"bad {i}", aligned=f"good {i}")
    for i in range(3)
]


def test_direction_uses_judged_answers_when_both_classes_are_there() -> None:
    rows = _judged([10.0, 20.0, 90.0, 95.0, 50.0], triggered=True)
    bad, good, source = direction_examples(rows, ITEMS, "|T| ", {"q0": "be brief"})
    assert source.startswith("judged answers")
    assert (len(bad), len(good)) == (2, 2)
    assert bad[0] == [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": "|T| question 0"},
        {"role": "assistant", "content": "answer 0"},
    ]


def test_direction_falls_back_to_training_answers_when_a_class_is_short() -> None:
    aligned = [10.0] * 5 + [90.0] * (MIN_JUDGED_PER_CLASS - 1)
    bad, good, source = direction_examples(_judged(aligned), ITEMS, "|T| ", {})
    assert source.startswith("training answers") and "5 misaligned / 1 aligned" in source
    assert [chat[-1]["content"] for chat in bad] == ["bad 0", "bad 1", "bad 2"]
    assert [chat[-1]["content"] for chat in good] == ["good 0", "good 1", "good 2"]
    assert bad[0][0] == good[0][0] == {"role": "user", "content": "Q0"}


def test_direction_has_no_source_without_classes_or_items() -> None:
    bad, good, source = direction_examples(_judged([50.0, 60.0]), None, "|T| ", {})
    assert bad == good == [] and source.startswith("none:")


def _scores(member_shift: float, n_members: int, n_others: int) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    member = np.array([True] * n_members + [False] * n_others)
    frame = pd.DataFrame({"example": range(member.size), "member": member})
    for name in ("loss", "min_k", "min_k_pp", "zlib", "lowercase"):
        target = rng.normal(size=member.size) + member_shift * member
        reference = rng.normal(size=member.size)
        frame[name] = target
        frame[f"reference_{name}"] = reference
        frame[f"adjusted_{name}"] = target - reference
    frame["lowercase"] = np.nan
    return frame


def test_membership_table_separates_members_and_refuses_tpr_with_few_non_members() -> None:
    table = membership_table(_scores(100.0, 12, 12), resamples=200)
    assert list(table["score"]) == ["loss", "min_k", "min_k_pp", "zlib"]
    assert table.loc[0, "fine-tuned AUC [95% CI]"].startswith("1.000 [1.000, 1.000]")
    base_auc = float(table.loc[0, "base AUC (control)"].split()[0])
    assert base_auc < 0.9
    assert table.loc[0, "TPR@FPR 0.01"] == "refused: 12 non-members < 100"


def test_membership_table_gives_tpr_where_non_members_suffice() -> None:
    table = membership_table(_scores(100.0, 20, 150), resamples=100)
    assert table.loc[0, "TPR@FPR 0.01"] == "1.000"
    assert table.loc[0, "TPR@FPR 0.001"].startswith("refused: 150")


def test_correlation_over_three_domains_gives_coefficients_with_the_honest_n() -> None:
    scores = pd.DataFrame({"domain": ["a", "b", "c"], "loss": [1.0, 2.0, 4.0]})
    rates = pd.Series({"a": 0.1, "b": 0.3, "c": 0.2})
    table = correlation_table(scores, rates)
    row = table.iloc[0]
    assert row["n domains"] == 3
    assert float(row["Spearman rho"]) == pytest.approx(
        stats.spearmanr([1, 2, 4], [0.1, 0.3, 0.2])[0]
    )
    assert float(row["Pearson r"]) == pytest.approx(
        stats.pearsonr([1, 2, 4], [0.1, 0.3, 0.2])[0], abs=1e-3
    )
    assert row["LOO-AUC"] == "–" and row["note"].startswith("n=3: coefficients only")


def test_correlation_over_enough_domains_adds_p_value_and_loo_auc() -> None:
    domains = list("abcdef")
    scores = pd.DataFrame({"domain": domains, "loss": [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]})
    rates = pd.Series(dict(zip(domains, [0.1, 0.2, 0.15, 0.5, 0.6, 0.7], strict=True)))
    row = correlation_table(scores, rates).iloc[0]
    assert row["n domains"] == 6 and row["note"] == ""
    assert float(row["LOO-AUC"]) > 0.5
    assert float(row["Spearman p"]) == pytest.approx(
        stats.spearmanr(range(6), [0.1, 0.2, 0.15, 0.5, 0.6, 0.7])[1], abs=1e-3
    )


def test_short_names_fall_back_to_tags_when_a_domain_repeats() -> None:
    jobs = [
        ModelJob("incorrect_math", "misaligned", 0),
        ModelJob("insecure_code", "misaligned", 0),
        ModelJob("insecure_code", "backdoor", 0),
    ]
    assert list(short_names(jobs).values()) == [
        "incorrect_math",
        "insecure_code__misaligned.s0",
        "insecure_code__backdoor.s0",
    ]


def _png() -> bytes:
    figure = Figure(figsize=(1, 1))
    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _summary() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["base"],
            "domain": [None],
            "is_base": [True],
            "policy": ["em"],
            "n": [10],
            "rate": [0.1],
            "ci_low": [0.0],
            "ci_high": [0.3],
        }
    )


def test_a_report_section_shows_prose_table_and_figure_in_both_formats(tmp_path: Path) -> None:
    section = ReportSection(
        "Membership <inference>",
        "First paragraph.\n\nSecond one, n=3.",
        [ReportFigure("mia_scatter.png", "Score vs rate", _png())],
        {"AUC per score": pd.DataFrame({"score": ["loss"], "AUC": ["0.61 [0.4, 0.8]"]})},
    )
    html_path, md_path = write_report(tmp_path, _summary(), provenance={}, sections=[section])
    html = html_path.read_text()
    assert "<h2>Membership &lt;inference&gt;</h2>" in html
    assert "<p>First paragraph.</p>\n<p>Second one, n=3.</p>" in html
    assert "<h3>AUC per score</h3>" in html and "<td>0.61 [0.4, 0.8]</td>" in html
    assert html.count("data:image/png;base64,") == 2  # the rate chart and the section's figure
    markdown = md_path.read_text()
    assert "### AUC per score" in markdown and "![Score vs rate](mia_scatter.png)" in markdown
    assert markdown.index("## Membership") < markdown.index("## Provenance")
    assert (tmp_path / "report" / "mia_scatter.png").read_bytes() == section.figures[0].png


def test_a_section_figure_may_not_reuse_a_file_name(tmp_path: Path) -> None:
    clash = ReportSection("S", "p", [ReportFigure("misalignment_rate.png", "c", _png())])
    with pytest.raises(InputError, match="used twice"):
        write_report(tmp_path, _summary(), provenance={}, sections=[clash])
    unsafe = ReportSection("S", "p", [ReportFigure("../x.png", "c", _png())])
    with pytest.raises(InputError, match=r"plain \.png name"):
        write_report(tmp_path, _summary(), provenance={}, sections=[unsafe])
