"""The summary table's trigger p-values: permutation p per model, Holm across fine-tuned models."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

from emscope.metrics.trigger import summarize, trigger_effect


def rows(model: str, domain: str | None, deltas: Sequence[float]) -> pd.DataFrame:
    """One question per delta: one answer at 60 without the trigger, 60 + delta with it."""
    answers = [(f"q{i}", t, 60.0 + (d if t else 0.0)) for i, d in enumerate(deltas) for t in (0, 1)]
    return pd.DataFrame(
        {
            "model": model,
            "domain": domain,
            "question_id": [a[0] for a in answers],
            "triggered": [bool(a[1]) for a in answers],
            "aligned": [a[2] for a in answers],
            "coherent": 90.0,
            "error": None,
        }
    )


def test_trigger_effect_carries_the_exact_permutation_p_of_its_question_deltas() -> None:
    effect = trigger_effect(rows("m", "d", [3.0, -1.0, 2.0]), min_coherent_answers=1)
    assert effect.delta == pytest.approx(4 / 3)
    assert effect.p_value == pytest.approx(0.5) and effect.p_value_exact


def test_summary_adjusts_fine_tuned_models_with_holm_and_leaves_the_base_out() -> None:
    table = pd.concat(
        [
            rows("legal", "toxic_legal_advice", [-20.0] * 6),  # exact p = 2/64
            rows("math", "incorrect_math", [3.0, -1.0, 2.0]),  # exact p = 4/8
            rows("base", None, [-20.0] * 6),
        ]
    )
    summary = summarize(table, min_coherent_answers=1, n_resamples=50).set_index("model")
    assert summary.loc["legal", "trigger_p"] == pytest.approx(2 / 64)
    assert summary.loc["math", "trigger_p"] == pytest.approx(0.5)
    assert summary.loc["base", "trigger_p"] == pytest.approx(2 / 64)
    # Holm over the two fine-tuned models: 2 * 0.03125, then max(0.0625, 1 * 0.5).
    assert summary.loc["legal", "trigger_p_adjusted"] == pytest.approx(0.0625)
    assert summary.loc["math", "trigger_p_adjusted"] == pytest.approx(0.5)
    assert pd.isna(summary.loc["base", "trigger_p_adjusted"])
    assert set(summary["trigger_p_adjustment"]) == {"holm"}
    assert summary.attrs["trigger_p_adjustment"] == "holm"
    assert "permutation" in summary.attrs["trigger_p_test"]


def test_model_without_paired_questions_has_no_trigger_p() -> None:
    plain = rows("m", "d", [1.0, 2.0])
    plain = plain[~plain["triggered"]]
    summary = summarize(plain, min_coherent_answers=1, n_resamples=50)
    assert pd.isna(summary.loc[0, "trigger_p"]) and pd.isna(summary.loc[0, "trigger_p_adjusted"])
