"""A 3-domain study with membership inference and steering on: the report holds the MIA tables,
the n=3 correlation, the sweep and the transfer matrix, and a rerun skips every analysis stage."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from rich.console import Console

from emscope.study import context as context_module
from emscope.study.config import StudyConfig
from emscope.study.pipeline import run_study
from study_fakes import AnswerHashJudge

DOMAINS = ["incorrect_math", "insecure_code", "risky_financial_advice"]


def _config(model_dir: Path) -> StudyConfig:
    return StudyConfig.model_validate(
        {
            "name": "analyses",
            "model": str(model_dir),
            "domains": DOMAINS,
            "conditions": ["misaligned"],
            "data": {"n_items": 12, "diversity": False},
            "train": {"preset": "demo", "overrides": {"max_steps": 1, "batch_size": 4}},
            "eval": {"samples_per_paraphrase": 1, "max_new_tokens": 4, "batch_size": 16},
            "metrics": {"bootstrap_resamples": 200},
            "analyses": {
                "mia": True,
                "steering": True,
                "mia_nonmembers": 6,
                "steer_questions": 2,
                "steer_samples": 1,
                "steer_scales": [0, 8],
            },
        }
    )


def _run(config: StudyConfig, run_dir: Path) -> tuple[Path, str]:
    output = io.StringIO()
    console = Console(file=output, width=200)
    report = run_study(config, run_dir, console)
    return report, output.getvalue()


@pytest.fixture(scope="module")
def study(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str, str]:
    patch = pytest.MonkeyPatch()
    patch.setattr(context_module, "make_judge", lambda config: AnswerHashJudge())
    patch.setenv("EMSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    run_dir = tmp_path_factory.mktemp("run")
    try:
        config = _config(tiny_model_dir)
        report, first = _run(config, run_dir)
        ledger_before = (run_dir / "stages.json").read_text()
        _, second = _run(config, run_dir)
        assert (run_dir / "stages.json").read_text() == ledger_before
    finally:
        patch.undo()
    return report, first, second


def test_report_holds_a_membership_table_per_domain(study: tuple[Path, str, str]) -> None:
    html = study[0].read_text(encoding="utf-8")
    assert "<h2>Membership inference</h2>" in html
    for domain in DOMAINS:
        assert f"{domain}/misaligned, seed 0: 12 members vs 6 held-out" in html
    assert "base AUC (control)" in html and "TPR@FPR 0.01" in html
    assert "refused: 6 non-members &lt; 100" in html


def test_report_gives_the_mia_correlation_with_its_honest_n(
    study: tuple[Path, str, str],
) -> None:
    report = study[0]
    html = report.read_text(encoding="utf-8")
    assert (
        "Post-fine-tuning predictor: correlation with the misalignment rate across domains "
        "(misaligned)" in html
    )
    assert "n=3: coefficients only, not significance-testable" in html
    assert "over n=3 domains (the base model is excluded)" in html
    table = report.parent.parent / "analyses" / "mia" / "summary" / "correlation_misaligned.csv"
    assert "adjusted_loss" in table.read_text()
    markdown = (report.parent / "report.md").read_text(encoding="utf-8")
    assert "![Member-mean score vs misalignment rate per domain (misaligned)]" in markdown
    assert (report.parent / "mia_scatter_misaligned.png").is_file()


def test_report_holds_the_sweep_the_transfer_matrix_and_the_cosines(
    study: tuple[Path, str, str],
) -> None:
    report = study[0]
    html = report.read_text(encoding="utf-8")
    assert "<h2>Steering and transfer</h2>" in html
    assert "Sweep on incorrect_math" in html
    for tag in ("none", "steer_L1_s8", "random_L1_s8", "ablate_L1"):
        assert tag in html
    matched = "matched norms: |added| = 0.25 x target activation norm"  # the default mode
    assert f"Transfer matrix (misalignment rate [95% CI]; block 1; {matched}" in html
    assert f"Transfer matrix (mean coherence 0-100; block 1; {matched})" in html
    assert "Transfer cells (block 1;" in html and "random (seed" in html
    assert "mean of the fine-tuned models&#x27; norms" in html or "mean of the fine-tuned" in html
    assert "Direction cosines (block 1)" in html
    assert "answer activation norm at block 1" in html
    for name in (
        "steer_sweep.png",
        "steer_transfer.png",
        "steer_transfer_coherence.png",
        "steer_cosines.png",
    ):
        assert (report.parent / name).is_file()
    matrix = (
        report.parent.parent / "analyses" / "steering" / "transfer" / "matrix.csv"
    ).read_text()
    targets = {line.split(",")[1] for line in matrix.splitlines()[1:]}
    assert targets == {*DOMAINS, "base"}


def test_every_direction_records_where_its_answers_came_from(
    study: tuple[Path, str, str],
) -> None:
    run_dir = study[0].parent.parent
    for domain in DOMAINS:
        meta = json.loads(
            (
                run_dir / "analyses" / "directions" / f"{domain}__misaligned.s0" / "direction.json"
            ).read_text()
        )
        assert meta["source"].startswith(("judged answers", "training answers"))
        assert meta["layers"] == [0, 1] and meta["n_misaligned"] >= 2


def test_a_rerun_skips_every_analysis_stage(study: tuple[Path, str, str]) -> None:
    _, first, second = study
    for stage in ("mia:summary", "steer:sweep", "steer:transfer"):
        assert f"done {stage}" in first
        assert f"skip {stage} (done)" in second
    for domain in DOMAINS:
        assert f"skip mia:{domain}__misaligned.s0 (done)" in second
        assert f"skip direction:{domain}__misaligned.s0 (done)" in second


def test_rewriting_the_report_from_disk_keeps_the_analysis_sections(
    study: tuple[Path, str, str],
) -> None:
    from emscope.study.report_stage import render_run_report

    report = study[0]
    report.write_text("", encoding="utf-8")
    html = render_run_report(report.parent.parent).read_text(encoding="utf-8")
    assert "<h2>Membership inference</h2>" in html
    assert "<h2>Steering and transfer</h2>" in html
