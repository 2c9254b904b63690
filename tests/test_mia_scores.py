"""The pure membership scores, checked against hand-worked numbers."""

from __future__ import annotations

import math
import zlib

import numpy as np
import pytest

from emscope.analyses.mia import (
    example_scores,
    loss_score,
    lowercase_score,
    mean_loss,
    min_k_plus_plus_score,
    min_k_score,
    reference_adjusted,
    standardized_log_probs,
    zlib_score,
)

LOG_PROBS = [-0.5, -4.0, -1.0, -2.5, -0.1, -3.0, -0.2, -6.0, -0.3, -1.5]


def test_loss_score_is_the_mean_log_prob_so_lower_loss_scores_higher() -> None:
    assert mean_loss([-1.0, -3.0]) == 2.0
    assert loss_score([-1.0, -3.0]) == -2.0
    assert loss_score([-0.1, -0.2]) > loss_score([-2.0, -3.0])


def test_min_k_averages_the_floor_of_k_times_n_smallest_log_probs() -> None:
    # n = 10, k = 0.2 -> the 2 smallest: -6.0 and -4.0.
    assert min_k_score(LOG_PROBS) == -5.0
    # k = 0.35 -> floor(3.5) = 3 smallest.
    assert min_k_score(LOG_PROBS, k=0.35) == pytest.approx((-6.0 - 4.0 - 3.0) / 3)


def test_min_k_uses_at_least_one_token_when_k_times_n_is_below_one() -> None:
    assert min_k_score([-0.5, -2.0, -1.0], k=0.2) == -2.0


def test_min_k_rejects_k_outside_zero_to_one() -> None:
    with pytest.raises(ValueError, match="k must be"):
        min_k_score(LOG_PROBS, k=0.0)


def test_min_k_plus_plus_standardizes_each_token_by_its_vocabulary_mean_and_sd() -> None:
    log_probs = [-1.0, -5.0, -2.0]
    mu = [-2.0, -3.0, -2.0]
    sigma = [0.5, 1.0, 2.0]
    z = standardized_log_probs(log_probs, mu, sigma)
    assert z.tolist() == [2.0, -2.0, 0.0]
    assert min_k_plus_plus_score(log_probs, mu, sigma, k=0.2) == -2.0
    assert min_k_plus_plus_score(log_probs, mu, sigma, k=0.7) == -1.0


def test_min_k_plus_plus_stays_finite_when_a_distribution_is_one_hot() -> None:
    assert math.isfinite(min_k_plus_plus_score([0.0], [0.0], [0.0]))


def test_zlib_score_divides_the_loss_by_the_compressed_length_of_the_text() -> None:
    text = "The answer is forty-two, obviously."
    expected = -2.0 / len(zlib.compress(text.encode("utf-8")))
    assert zlib_score([-1.0, -3.0], text) == pytest.approx(expected)


def test_lowercase_score_is_minus_the_ratio_of_original_to_lowercased_loss() -> None:
    assert lowercase_score([-1.0, -1.0], [-4.0]) == -0.25
    assert math.isnan(lowercase_score([-1.0], [0.0]))


def test_reference_adjusted_of_loss_scores_is_reference_loss_minus_target_loss() -> None:
    target, reference = [-0.5, -0.5], [-2.0, -3.0]
    adjusted = reference_adjusted(loss_score(target), loss_score(reference))
    assert adjusted == pytest.approx(mean_loss(reference) - mean_loss(target))


def test_example_scores_reports_every_score_and_nan_lowercase_without_a_second_pass() -> None:
    scores = example_scores(LOG_PROBS, np.full(10, -2.0), np.ones(10), "text")
    assert set(scores) == {"loss", "min_k", "min_k_pp", "zlib", "lowercase"}
    assert math.isnan(scores["lowercase"])
    assert scores["min_k_pp"] == pytest.approx(-5.0 + 2.0)


def test_scores_refuse_an_example_without_scored_tokens() -> None:
    with pytest.raises(ValueError, match="no scored tokens"):
        loss_score([])
