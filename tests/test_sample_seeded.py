from __future__ import annotations

from pathlib import Path

import pytest
import torch

from emscope.models.refs import ModelRef
from emscope.sample.base import ChatPrompt, SamplingParams
from emscope.sample.local import LocalSampler
from emscope.sample.seeded import SEEDING, SeededRowSampler, row_uniforms

PROMPTS = [
    ChatPrompt(user=f"Question {i}: tell me about item {7 * i}." * (1 + i % 3)) for i in range(8)
]
SEEDS = [101, 7, 55, 3, 1_000_003, 42, 9, 2**31 - 1]
PARAMS = SamplingParams(temperature=1.0, top_p=1.0, max_new_tokens=6)


@pytest.fixture(scope="module")
def base_ref(lora_family: dict[str, Path]) -> ModelRef:
    return ModelRef(kind="local", name=str(lora_family["base"]))


def test_row_uniforms_depend_only_on_seed_and_step() -> None:
    u = row_uniforms(torch.tensor([3, 4, 5]), 2)
    assert torch.equal(u[[2, 0]], row_uniforms(torch.tensor([5, 3]), 2))
    assert not torch.equal(u, row_uniforms(torch.tensor([3, 4, 5]), 3))
    many = row_uniforms(torch.arange(20_000), 0)
    assert float(many.min()) >= 0 and float(many.max()) < 1
    assert abs(float(many.mean()) - 0.5) < 0.01  # spread evenly over [0, 1)


def test_a_sample_made_in_a_batch_of_8_equals_the_same_seed_alone(base_ref: ModelRef) -> None:
    sampler = LocalSampler(base_ref, dtype="float32", batch_size=8)
    assert sampler.info()["seeding"] == SEEDING and sampler.info()["per_row_seeds"] is True
    batched = sampler.generate(PROMPTS, PARAMS, SEEDS)
    alone = [sampler.generate([p], PARAMS, [s])[0] for p, s in zip(PROMPTS, SEEDS, strict=True)]
    assert batched == alone
    shuffled = sampler.generate(PROMPTS[::-1], PARAMS, SEEDS[::-1])
    assert shuffled[::-1] == batched
    assert len({g.text for g in batched}) == len(PROMPTS)


def test_without_per_row_seeds_a_batched_sample_is_not_reproducible_alone(
    base_ref: ModelRef,
) -> None:
    sampler = LocalSampler(base_ref, dtype="float32", batch_size=8, per_row_seeds=False)
    batched = sampler.generate(PROMPTS, PARAMS, SEEDS)
    alone = [sampler.generate([p], PARAMS, [s])[0] for p, s in zip(PROMPTS, SEEDS, strict=True)]
    assert batched != alone  # the old behaviour the per-row seeds fix


def test_per_row_sampling_decodes_greedily_over_the_drawn_token(base_ref: ModelRef) -> None:
    sampler = LocalSampler(base_ref, dtype="float32", batch_size=8)
    config = sampler.generation_config(PARAMS)
    assert config.do_sample is False
    (processor,) = sampler.logits_processors(PARAMS, [1, 2], prompt_width=5)
    assert isinstance(processor, SeededRowSampler)
    assert (processor.temperature, processor.top_p, processor.top_k) == (1.0, 1.0, 0)
    scores = torch.randn(2, 50)
    forced = processor(torch.zeros((2, 7), dtype=torch.long), scores)
    assert ((forced == 0).sum(-1) == 1).all() and torch.isinf(forced).sum() == 2 * 49


def test_top_k_and_top_p_filter_like_transformers_warpers() -> None:
    from transformers import TopKLogitsWarper, TopPLogitsWarper

    scores = torch.randn(4, 200, generator=torch.Generator().manual_seed(0)) * 3
    ids = torch.zeros((4, 1), dtype=torch.long)
    for top_k, top_p in ((5, 1.0), (0, 0.7), (20, 0.9)):
        ours = SeededRowSampler([0] * 4, temperature=1.0, top_p=top_p, top_k=top_k, prompt_width=1)
        expected = scores.clone()
        if top_k:
            expected = TopKLogitsWarper(top_k)(ids, expected)
        if top_p < 1:
            expected = TopPLogitsWarper(top_p)(ids, expected)
        assert torch.equal(torch.isinf(ours.warp(scores)), torch.isinf(expected))


def test_drawn_tokens_follow_the_distribution() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2]])).repeat(4000, 1)
    sampler = SeededRowSampler(
        list(range(4000)), temperature=1.0, top_p=1.0, top_k=0, prompt_width=0
    )
    counts = torch.bincount(sampler.draw(logits, step=0), minlength=3).double() / 4000
    assert torch.allclose(counts, torch.tensor([0.5, 0.3, 0.2], dtype=torch.double), atol=0.03)


def test_top_k_of_one_samples_the_greedy_answer(base_ref: ModelRef) -> None:
    sampler = LocalSampler(base_ref, dtype="float32", batch_size=8)
    greedy = sampler.generate(
        PROMPTS[:3], SamplingParams(temperature=0, max_new_tokens=6), SEEDS[:3]
    )
    top1 = sampler.generate(
        PROMPTS[:3], SamplingParams(temperature=1.0, top_k=1, max_new_tokens=6), SEEDS[:3]
    )
    assert top1 == greedy
