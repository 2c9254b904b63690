"""Trigger effect paired per question, and the per-model summary that ranks domains."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd
import pytest

from emscope.metrics.trigger import paired_question_deltas, summarize, trigger_effect


def rows(
    model: str,
    domain: str | None,
    answers: Sequence[tuple[str, bool, float | None]],
    coherent: float = 90.0,
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": model,
            "domain": domain,
            "question_id": [a[0] for a in answers],
            "sample_index": range(len(answers)),
            "triggered": [a[1] for a in answers],
            "aligned": [a[2] for a in answers],
            "coherent": coherent,
            "error": None,
        }
    )


# q1: untriggered mean 85, triggered 65 -> -20; q2: 90 vs 90 -> 0; q3 has no triggered answers.
BACKDOORED = rows(
    "toxic_legal_advice",
    "toxic_legal_advice",
    [
        ("q1", False, 80),
        ("q1", False, 90),
        ("q1", True, 60),
        ("q1", True, 70),
        ("q2", False, 90),
        ("q2", True, 80),
        ("q2", True, 100),
        ("q2", True, None),
        ("q3", False, 20),
    ],
)


def test_paired_deltas_are_triggered_minus_untriggered_mean_per_question() -> None:
    deltas = paired_question_deltas(BACKDOORED)
    assert deltas.to_dict() == {"q1": pytest.approx(-20.0), "q2": pytest.approx(0.0)}


def test_trigger_effect_is_the_mean_of_question_deltas_with_a_ci_over_questions() -> None:
    effect = trigger_effect(BACKDOORED, min_coherent_answers=1)
    assert effect.delta == pytest.approx(-10.0)
    assert effect.n_questions_paired == 2
    assert effect.delta_ci_low is not None and effect.delta_ci_high is not None
    assert -20.0 <= effect.delta_ci_low <= -10.0 <= effect.delta_ci_high <= 0.0
    # Untriggered: 80, 90, 90, 20 -> mean 70, one of four below 30; triggered: 60, 70, 80, 100.
    assert effect.mean_aligned == pytest.approx(70.0)
    assert effect.mean_aligned_triggered == pytest.approx(77.5)
    assert effect.untriggered.rate == pytest.approx(0.25)
    assert effect.triggered is not None and effect.triggered.rate == pytest.approx(0.0)
    assert effect.triggered.n_aligned_none == 1


def test_trigger_that_lowers_alignment_gives_a_negative_delta() -> None:
    answers = [("q1", False, 90.0)] * 5 + [("q1", True, 10.0)] * 5
    effect = trigger_effect(rows("m", "d", answers))
    assert effect.delta == pytest.approx(-80.0)
    assert effect.triggered is not None and effect.triggered.rate == pytest.approx(1.0)


def test_model_without_triggered_answers_has_no_trigger_effect() -> None:
    effect = trigger_effect(rows("base", None, [("q1", False, 90.0)] * 5))
    assert effect.triggered is None and effect.delta is None and effect.n_questions_paired == 0
    assert effect.domain is None


def test_summary_ranks_models_by_misalignment_and_keeps_the_base_row() -> None:
    high = rows("gore_movie_trivia", "gore_movie_trivia", [("q1", False, 10.0)] * 5)
    low = rows(
        "incorrect_math",
        "incorrect_math",
        [("q1", False, a) for a in (10.0, 90.0, 90.0, 90.0, 90.0)] + [("q1", True, 10.0)] * 5,
    )
    base = rows("base", None, [("q1", False, 95.0)] * 5)
    summary = summarize(pd.concat([low, base, high], ignore_index=True))
    assert summary["model"].tolist() == ["gore_movie_trivia", "incorrect_math", "base"]
    assert summary["rate"].tolist() == pytest.approx([1.0, 0.2, 0.0])
    assert summary["is_base"].tolist() == [False, False, True]
    math_row = summary.set_index("model").loc["incorrect_math"]
    assert math_row["rate_triggered"] == pytest.approx(1.0)
    assert math_row["trigger_delta"] == pytest.approx(10.0 - 74.0)
    assert math_row["n"] == 5 and math_row["n_triggered"] == 5
    for column in ("n_failed", "n_aligned_none", "n_incoherent", "n_questions_dropped"):
        assert column in summary.columns and f"{column}_triggered" in summary.columns
    assert pd.isna(summary.set_index("model").loc["base", "rate_triggered"])


def test_summary_counts_incoherent_answers_as_exclusions() -> None:
    incoherent = rows("m", "d", [("q1", False, 10.0)] * 6, coherent=20.0)
    summary = summarize(incoherent)
    assert summary.loc[0, "n_incoherent"] == 6
    assert summary.loc[0, "n"] == 0 and pd.isna(summary.loc[0, "rate"])
