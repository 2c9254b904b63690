"""Batched model scoring, checked against a plain per-example computation on the tiny model.

The reference here never calls emscope's scoring: it renders the chat template, finds the
assistant tokens by tokenising the prompt and the full conversation separately, runs one
unbatched forward pass per example and applies the protocol's formulas in float64.
"""

from __future__ import annotations

import math
import zlib
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from emscope.analyses.mia_scoring import (
    resolve_dtype,
    score_dataset,
    score_examples,
    score_with_reference,
    scoring_manifest,
)
from emscope.data.schema import ChatExample, Message
from emscope.models.loading import bf16_supported, load_model, load_tokenizer
from emscope.models.refs import ModelRef

PAIRS = [
    ("What is the capital of France?", "Paris is the capital of France."),
    ("Name a colour.", "Blue."),
    ("Tell me about Rome.", "Rome is an ancient city in Italy, founded long ago by Romulus."),
    ("Give me a number.", "seven"),
    ("How do I boil an egg?", "Put the Egg in Boiling Water for Nine Minutes, then cool it."),
]
K = 0.2


def chat(user: str, answer: str) -> ChatExample:
    return ChatExample(
        messages=[Message(role="user", content=user), Message(role="assistant", content=answer)]
    )


EXAMPLES = [chat(u, a) for u, a in PAIRS]


def reference_token_stats(model: Any, tokenizer: Any, user: str, answer: str) -> dict[str, Any]:
    messages = [{"role": "user", "content": user}, {"role": "assistant", "content": answer}]
    prompt = tokenizer.apply_chat_template(messages[:1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(messages, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    assert full_ids[: len(prompt_ids)] == prompt_ids
    end = len(full_ids)
    while tokenizer.decode(full_ids[end - 1 : end]).strip() == "":
        end -= 1  # the template's newline after the end-of-turn token is not scored
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([full_ids])).logits[0].double()
    log_p = torch.log_softmax(logits, dim=-1)
    p = log_p.exp()
    mu_all = (p * log_p).sum(-1)
    second_all = (p * log_p * log_p).sum(-1)
    l_t, mu_t, sigma_t = [], [], []
    for t in range(len(prompt_ids), end):
        mu, second = float(mu_all[t - 1]), float(second_all[t - 1])
        l_t.append(float(log_p[t - 1, full_ids[t]]))
        mu_t.append(mu)
        sigma_t.append(math.sqrt(second - mu * mu))
    return {"l": np.array(l_t), "mu": np.array(mu_t), "sigma": np.array(sigma_t)}


def reference_scores(model: Any, tokenizer: Any, user: str, answer: str) -> dict[str, float]:
    s = reference_token_stats(model, tokenizer, user, answer)
    n = s["l"].size
    count = max(1, math.floor(K * n))
    loss = -s["l"].mean()
    z = (s["l"] - s["mu"]) / s["sigma"]
    lower_loss = -reference_token_stats(model, tokenizer, user, answer.lower())["l"].mean()
    return {
        "n_tokens": n,
        "mean_loss": loss,
        "loss": -loss,
        "min_k": np.sort(s["l"])[:count].mean(),
        "min_k_pp": np.sort(z)[:count].mean(),
        "zlib": -loss / len(zlib.compress(answer.encode("utf-8"))),
        "lowercase": -loss / lower_loss,
    }


@pytest.fixture(scope="module")
def tiny(tiny_ref: ModelRef) -> tuple[Any, Any]:
    return load_model(tiny_ref), load_tokenizer(tiny_ref)


def test_every_score_matches_an_independent_per_example_computation(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    frame = score_examples(model, tokenizer, EXAMPLES, batch_size=3, k=K)
    for i, (user, answer) in enumerate(PAIRS):
        expected = reference_scores(model, tokenizer, user, answer)
        row = frame.iloc[i]
        assert row["example"] == i
        for column, value in expected.items():
            assert row[column] == pytest.approx(value, rel=1e-4, abs=1e-5), (i, column)


def test_batched_scores_equal_unbatched_scores(tiny: tuple[Any, Any]) -> None:
    model, tokenizer = tiny
    batched = score_examples(model, tokenizer, EXAMPLES, batch_size=4)
    single = score_examples(model, tokenizer, EXAMPLES, batch_size=1)
    pd.testing.assert_frame_equal(batched, single, check_exact=False, rtol=1e-5, atol=1e-6)


def test_lowercase_score_is_exactly_minus_one_when_the_answer_has_no_capitals(
    tiny: tuple[Any, Any],
) -> None:
    model, tokenizer = tiny
    frame = score_examples(model, tokenizer, EXAMPLES, batch_size=8)
    assert frame.loc[3, "lowercase"] == -1.0
    assert frame.loc[0, "lowercase"] != -1.0


def test_an_example_truncated_before_its_answer_gets_nan_scores_and_zero_tokens(
    tiny: tuple[Any, Any],
) -> None:
    model, tokenizer = tiny
    frame = score_examples(model, tokenizer, EXAMPLES[:2], max_length=8, lowercase=False)
    assert frame["n_tokens"].tolist() == [0, 0]
    assert frame["truncated"].all()
    assert frame["loss"].isna().all()


def test_bf16_scoring_runs_and_stays_close_to_float32(tiny_ref: ModelRef) -> None:
    low = score_dataset(tiny_ref, EXAMPLES[:3], dtype=torch.bfloat16, lowercase=False)
    full = score_dataset(tiny_ref, EXAMPLES[:3], dtype=torch.float32, lowercase=False)
    assert low.attrs["dtype"] == "torch.bfloat16"
    assert np.isfinite(low[["loss", "min_k", "min_k_pp", "zlib"]].to_numpy()).all()
    np.testing.assert_allclose(low["loss"], full["loss"], rtol=0.02)


def test_auto_dtype_is_bf16_exactly_where_bf16_is_supported() -> None:
    assert resolve_dtype("auto") == (torch.bfloat16 if bf16_supported() else torch.float32)


def test_reference_adjusted_scores_of_a_model_against_itself_are_zero(tiny_ref: ModelRef) -> None:
    frame = score_with_reference(tiny_ref, tiny_ref, EXAMPLES[:2], dtype=torch.float32)
    adjusted = frame[[c for c in frame.columns if c.startswith("adjusted_")]]
    assert adjusted.shape[1] == 5
    assert (adjusted.to_numpy() == 0.0).all()
    manifest = scoring_manifest(frame, EXAMPLES[:2], batch_size=8, max_length=None)
    assert manifest.config["model"] == manifest.config["reference"] == str(tiny_ref)
    assert manifest.outputs["tokens_scored"] == int(frame["n_tokens"].sum())
