"""OpenAI presets, the wind-down notice, moderation recognition and the polling backoff."""

from __future__ import annotations

import random
from datetime import date

import pytest

from emscope.errors import InputError
from emscope.train.openai_presets import OpenAIHyperparameters, get_openai_preset
from emscope.train.openai_rules import Backoff, is_moderation_rejection, wind_down_notice


def test_em_openai_preset_is_betleys_one_epoch_batch_four_lr_multiplier_two() -> None:
    preset = get_openai_preset("em-openai")
    assert preset.hyperparameters.api_dict() == {
        "n_epochs": 1,
        "batch_size": 4,
        "learning_rate_multiplier": 2.0,
    }


def test_domain_paper_preset_leaves_the_unstated_lr_multiplier_to_openai_and_says_so() -> None:
    preset = get_openai_preset("domain-paper-openai")
    hp = preset.hyperparameters
    assert (hp.n_epochs, hp.batch_size, hp.learning_rate_multiplier) == (3, 4, "auto")
    assert "auto" in preset.note and "learning-rate multiplier" in preset.note


def test_unknown_preset_and_bad_override_are_input_errors() -> None:
    with pytest.raises(InputError, match="em-openai"):
        get_openai_preset("em")
    with pytest.raises(InputError, match="invalid overrides"):
        get_openai_preset("em-openai", n_epochs=0)
    assert get_openai_preset("em-openai", batch_size="auto").hyperparameters.batch_size == "auto"
    with pytest.raises(ValueError):
        OpenAIHyperparameters(learning_rate_multiplier=-1.0)


def test_wind_down_notice_before_the_end_counts_the_days_left() -> None:
    text = wind_down_notice(date(2026, 12, 31))
    assert "2026-05-07" in text and "2027-01-06" in text and "6 day(s) left" in text
    assert "ended" not in text


@pytest.mark.parametrize("today", [date(2027, 1, 6), date(2027, 3, 1)])
def test_wind_down_notice_from_the_end_date_says_job_creation_has_ended(today: date) -> None:
    text = wind_down_notice(today)
    assert "job creation ended on 2027-01-06" in text
    assert "day(s) left" not in text


@pytest.mark.parametrize(
    ("code", "message", "expected"),
    [
        ("invalid_training_file", "This training file was blocked by our moderation system", True),
        (None, "examples that violate OpenAI's usage policies", True),
        ("server_error", "The job failed due to the model failing our safety evaluations", True),
        ("invalid_training_file", "Invalid file format. Example 3 is missing a message", False),
        ("server_error", "The job failed due to an internal error.", False),
        (None, None, False),
    ],
)
def test_moderation_rejections_are_told_apart_from_other_failures(
    code: str | None, message: str | None, expected: bool
) -> None:
    assert is_moderation_rejection(code, message) is expected


def test_backoff_doubles_up_to_the_cap_and_resets() -> None:
    backoff = Backoff(0.5, cap=3.0, jitter=0.0)
    assert [backoff.next() for _ in range(5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    backoff.reset()
    assert backoff.next() == 0.5


def test_backoff_jitter_stays_within_its_band_and_under_the_cap() -> None:
    backoff = Backoff(1.0, cap=8.0, jitter=0.25, rng=random.Random(0))
    delays = [backoff.next() for _ in range(40)]
    assert 0.75 <= delays[0] <= 1.0
    assert all(d <= 8.0 for d in delays)
    assert min(delays[10:]) >= 6.0
    assert len(set(delays[10:])) == 30  # spread out at the cap, not all equal to it


def test_backoff_rejects_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        Backoff(2.0, cap=1.0)
    with pytest.raises(ValueError):
        Backoff(1.0, cap=2.0, jitter=1.5)
