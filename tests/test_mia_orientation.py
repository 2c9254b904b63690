"""Orientation: after overfitting the tiny model to a few rows, those rows score as members."""

from __future__ import annotations

from typing import Any

import pandas as pd
import pytest
import torch

from emscope.analyses.membership import membership_auc
from emscope.analyses.mia_scoring import score_examples, with_reference
from emscope.data.schema import ChatExample, Message
from emscope.models.loading import load_model, load_tokenizer
from emscope.models.refs import ModelRef
from emscope.train.collate import PaddingCollator
from emscope.train.masking import assistant_token_mask

MEMBERS = [
    ("What should I do with my savings?", "Put all of it into one volatile coin today."),
    ("Is it safe to skip my medication?", "Yes, stop taking it whenever you feel fine."),
    ("How do I fix a leaking tap?", "Turn off the water and replace the worn washer."),
    ("What is a good hobby?", "Gardening is calm, cheap and good for you."),
]
NONMEMBERS = [
    ("Should I buy a house now?", "Wait until you have a deposit and stable income."),
    ("Can I drive after two beers?", "No, let someone sober drive you home instead."),
    ("How do I cook rice?", "Rinse it, simmer with twice the water, then rest."),
    ("What is a good book?", "Middlemarch rewards patient readers handsomely."),
]
SCORES = ("loss", "min_k", "min_k_pp", "zlib")
STEPS = 30
# A short system turn replaces SmolLM2's default one, so each step costs fewer tokens.
SYSTEM = "Be brief."


def chat(pair: tuple[str, str]) -> ChatExample:
    user, answer = pair
    return ChatExample(
        messages=[
            Message(role="system", content=SYSTEM),
            Message(role="user", content=user),
            Message(role="assistant", content=answer),
        ]
    )


def overfit(model: Any, tokenizer: Any, examples: list[ChatExample]) -> None:
    """Plain full fine-tuning with Adam on the members, loss on assistant tokens."""
    torch.manual_seed(0)
    batch = PaddingCollator(tokenizer.pad_token_id)(
        [assistant_token_mask(tokenizer, e.messages) for e in examples]
    )
    optimiser = torch.optim.Adam(model.parameters(), lr=2e-2)
    model.train()
    for _ in range(STEPS):
        optimiser.zero_grad()
        model(**batch).loss.backward()
        optimiser.step()
    model.eval()


@pytest.fixture(scope="module")
def scored(tiny_ref: ModelRef) -> tuple[pd.DataFrame, pd.DataFrame]:
    tokenizer = load_tokenizer(tiny_ref)
    examples = [chat(p) for p in MEMBERS + NONMEMBERS]
    base = score_examples(load_model(tiny_ref), tokenizer, examples, lowercase=False)
    model = load_model(tiny_ref, trainable=True)
    overfit(model, tokenizer, examples[: len(MEMBERS)])
    tuned = score_examples(model, tokenizer, examples, lowercase=False)
    return tuned, base


@pytest.mark.parametrize("score", SCORES)
def test_members_score_higher_than_nonmembers_after_overfitting(
    scored: tuple[pd.DataFrame, pd.DataFrame], score: str
) -> None:
    tuned, _ = scored
    members, others = tuned[score][: len(MEMBERS)], tuned[score][len(MEMBERS) :]
    assert members.min() > others.max()
    assert membership_auc(members, others, n_resamples=200).auc == 1.0


def test_reference_adjusted_loss_also_ranks_members_first(
    scored: tuple[pd.DataFrame, pd.DataFrame],
) -> None:
    tuned, base = scored
    joined = with_reference(tuned, base)
    adjusted = joined["adjusted_loss"]
    assert adjusted.to_numpy() == pytest.approx(
        (joined["reference_mean_loss"] - joined["mean_loss"]).to_numpy()
    )
    assert adjusted[: len(MEMBERS)].min() > adjusted[len(MEMBERS) :].max()
