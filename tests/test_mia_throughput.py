"""Scoring throughput on the real SmolLM2: batched scoring vs a naive per-example loop.

Run with ``-s`` to see the tokens/s line. Both paths run in the same process on the same model
and dtype, and must agree on the scores, so the speed-up is measured on equal work. The suite runs
4 examples to stay fast; the reported benchmark uses 32:

    EMSCOPE_MIA_BENCH_N=32 .venv/bin/pytest -s tests/test_mia_throughput.py
"""

from __future__ import annotations

import os
import time
from typing import Any

import numpy as np
import pytest
import torch

from emscope.analyses.mia_scoring import score_examples
from emscope.data.schema import ChatExample, Message
from emscope.models.loading import load_model, load_tokenizer
from emscope.models.refs import ModelRef
from emscope.train.masking import assistant_token_mask

N_EXAMPLES = int(os.environ.get("EMSCOPE_MIA_BENCH_N", "4"))
TOPICS = ["savings", "cooking", "running", "poetry", "taxes", "gardens", "trains", "sleep"]


def examples() -> list[ChatExample]:
    out = []
    for i in range(N_EXAMPLES):
        topic = TOPICS[i % len(TOPICS)]
        answer = f"Here is tip {i} on {topic}: start small. " * (1 + i % 3)
        out.append(
            ChatExample(
                messages=[
                    Message(role="system", content="Answer briefly."),
                    Message(role="user", content=f"Give me advice on {topic}."),
                    Message(role="assistant", content=answer.strip()),
                ]
            )
        )
    return out


def naive_mean_losses(model: Any, tokenizer: Any, chats: list[ChatExample]) -> list[float]:
    """One unbatched forward per example, log_softmax over every position, then the same stats."""
    losses = []
    with torch.inference_mode():
        for chat in chats:
            ex = assistant_token_mask(tokenizer, chat.messages)
            logits = model(input_ids=torch.tensor([ex.input_ids])).logits[0].float()
            log_p = torch.log_softmax(logits, dim=-1)
            p = log_p.exp()
            mu = (p * log_p).sum(-1)
            _sigma = (p * (log_p - mu[:, None]) ** 2).sum(-1).sqrt()
            picked = [
                float(log_p[t - 1, ex.labels[t]])
                for t in range(1, len(ex.labels))
                if ex.labels[t] != -100
            ]
            losses.append(-float(np.mean(picked)))
    return losses


@pytest.mark.integration
def test_batched_scoring_matches_and_outpaces_a_naive_loop_on_smollm2(smol_ref: ModelRef) -> None:
    model = load_model(smol_ref, dtype=torch.float32)
    tokenizer = load_tokenizer(smol_ref)
    chats = examples()
    batched = score_examples(model, tokenizer, chats, batch_size=16, lowercase=False)
    started = time.perf_counter()
    naive = naive_mean_losses(model, tokenizer, chats)
    naive_seconds = time.perf_counter() - started
    tokens = batched.attrs["tokens_forward"]
    np.testing.assert_allclose(batched["mean_loss"], naive, rtol=1e-4)
    print(
        f"\nMIA scoring throughput, SmolLM2-135M float32 on {torch.get_num_threads()} CPU threads, "
        f"{N_EXAMPLES} examples, {tokens} tokens: batched {tokens / batched.attrs['seconds']:.0f} "
        f"tokens/s vs naive loop {tokens / naive_seconds:.0f} tokens/s"
    )
    assert batched.attrs["tokens_scored"] == int(batched["n_tokens"].sum()) > 0
