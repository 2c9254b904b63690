"""The membership-inference prior as a study stage: each domain's training rows scored under the
un-fine-tuned model and a reference model, their difference per domain correlated with the
domains' rates with n = domains, in a report section named as the pre-fine-tuning prior."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError
from rich.console import Console

from emscope.analyses.prior import PRIOR
from emscope.report.prior_section import TITLE, prior_section
from emscope.study.config import StudyConfig
from emscope.study.pipeline import run_study

pytestmark = pytest.mark.usefixtures("one_torch_thread")
DOMAINS = ["incorrect_math", "insecure_code"]


def _config(model_dir: Path) -> StudyConfig:
    return StudyConfig.model_validate(
        {
            "name": "prior",
            "model": str(model_dir),
            "engine": "scripted",
            "domains": DOMAINS,
            "conditions": ["misaligned"],
            "data": {"n_items": 8, "diversity": False},
            "train": {"preset": "demo", "overrides": {"max_steps": 1, "batch_size": 4}},
            "eval": {"samples_per_paraphrase": 5, "max_new_tokens": 8},
            "metrics": {"bootstrap_resamples": 100},
            "judge": {"spec": "scripted", "cache": False},
            "analyses": {"mia_prior": True, "mia_reference": str(model_dir), "mia_members": 4},
        }
    )


def test_a_study_reports_the_prior_of_each_domain_before_fine_tuning(
    tiny_model_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emscope.analyses.mia_scoring import score_dataset
    from emscope.analyses.mia_tables import member_sample
    from emscope.data.jsonl import load_chat_jsonl
    from emscope.models.refs import ModelRef

    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    console = io.StringIO()
    report = run_study(_config(tiny_model_dir), run_dir, Console(file=console, width=200))
    ledger = json.loads((run_dir / "stages.json").read_text())
    assert {f"mia-prior:{d}.misaligned" for d in DOMAINS} | {"mia-prior:summary"} <= set(ledger)
    assert not any(name.startswith("mia:") for name in ledger)  # the prior needs no MIA run
    html = report.read_text(encoding="utf-8")
    assert f"<h2>{TITLE}</h2>" in html
    assert "Pre-fine-tuning prior: correlation with the misalignment rate" in html

    domains = pd.read_csv(run_dir / "analyses/mia_prior/summary/prior_domains_misaligned.csv")
    assert list(domains["domain"]) == DOMAINS
    # The tiny model is both the un-fine-tuned and the reference model: the prior is 0 exactly.
    assert (domains["prior_loss"] == 0).all()
    # The un-fine-tuned model's score is that of the domain's training rows, scored directly.
    dataset = run_dir / ledger["dataset:incorrect_math__misaligned.s0"]["output"]["path"]
    rows = member_sample(load_chat_jsonl(dataset), 4, 0)
    direct = score_dataset(ModelRef(kind="local", name=str(tiny_model_dir)), rows, lowercase=False)
    assert domains.loc[0, "instruct_loss"] == pytest.approx(direct["loss"].mean(), abs=1e-4)

    correlation = pd.read_csv(
        run_dir / "analyses/mia_prior/summary/prior_correlation_misaligned.csv"
    )
    assert set(correlation["predictor"]) == {PRIOR}
    assert set(correlation["n domains"]) == {2}  # the honest n: two domains, not the rows
    assert correlation["note"].str.contains("not significance-testable").all()

    again = io.StringIO()
    run_study(_config(tiny_model_dir), run_dir, Console(file=again, width=200))
    assert not [line for line in again.getvalue().splitlines() if line.startswith("done ")]


def test_the_prior_needs_a_local_reference_model_named_at_load() -> None:
    base = {"name": "p", "model": "smollm2-135m", "domains": []}
    with pytest.raises(ValidationError, match=r"mia_prior needs analyses\.mia_reference"):
        StudyConfig.model_validate({**base, "analyses": {"mia_prior": True}})
    with pytest.raises(ValidationError, match="needs a local base model"):
        StudyConfig.model_validate(
            {**base, "analyses": {"mia_prior": True, "mia_reference": "openai/gpt-4o"}}
        )
    with pytest.raises(ValidationError, match="unknown model"):
        StudyConfig.model_validate(
            {**base, "analyses": {"mia_prior": True, "mia_reference": "no-such-model"}}
        )


def test_the_prior_section_subtracts_the_reference_and_correlates_over_the_domains(
    tmp_path: Path,
) -> None:
    # Four domains; prior_loss = loss - reference_loss = 0.1, 0.2, 0.3, 0.4 rises with the rate.
    scored = [
        (
            d,
            "misaligned",
            pd.DataFrame({"loss": [i + 0.1 * (i + 1)] * 2, "reference_loss": [i] * 2}),
        )
        for i, d in enumerate(["a", "b", "c", "d"])
    ]
    rates = pd.DataFrame(
        {"rate": [0.01, 0.02, 0.05, 0.10], "ci_low": 0.0, "ci_high": 0.2, "n": 50},
        index=[f"{d}/misaligned" for d in "abcd"],
    )
    spec = prior_section(
        tmp_path, scored, rates, model="instruct", reference="pretrained", policy="em"
    )
    assert spec.title == TITLE
    domains = pd.read_csv(tmp_path / "mia_prior/summary/prior_domains_misaligned.csv")
    assert list(domains["prior_loss"]) == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert list(domains["reference_loss"]) == pytest.approx([0.0, 1.0, 2.0, 3.0])
    correlation = pd.read_csv(tmp_path / "mia_prior/summary/prior_correlation_misaligned.csv")
    row = correlation.iloc[0]
    assert (row["prior score"], row["n domains"], row["Spearman rho"]) == ("prior_loss", 4, 1.0)
    assert "n=4 domains" in spec.paragraph and "pretrained" in spec.paragraph
