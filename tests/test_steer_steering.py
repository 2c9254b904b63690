"""Steering and ablation hooks on the tiny Llama, through the sampler's own generate()."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
import torch

from emscope.analyses.activations import record_block_outputs
from emscope.analyses.directions import Direction, DirectionMeta, model_fingerprint
from emscope.analyses.steering import (
    Intervention,
    ablate,
    steer,
    steering_sweep,
    sweep_interventions,
)
from emscope.errors import EmscopeError, InputError
from emscope.judge.base import JudgeRecord, JudgeRequest, MetricScore
from emscope.models.refs import ModelRef
from emscope.sample.base import ChatPrompt, SamplingParams
from emscope.sample.local import LocalSampler
from emscope.sample.questions import EvalPrompt

GREEDY = SamplingParams(temperature=0, max_new_tokens=6)
PROMPTS = [ChatPrompt(user="Tell me a story."), ChatPrompt(user="What do you wish for?")]


@pytest.fixture(scope="module")
def sampler(tiny_ref: ModelRef) -> LocalSampler:
    return LocalSampler(tiny_ref, dtype="float32", batch_size=4, device="cpu")


def random_direction(model: torch.nn.Module, layers: Sequence[int], seed: int = 0) -> Direction:
    generator = torch.Generator().manual_seed(seed)
    fingerprint = model_fingerprint(model)
    vectors = torch.randn(len(layers), fingerprint.hidden_size, generator=generator)
    meta = DirectionMeta(
        model="tiny",
        fingerprint=fingerprint,
        layers=list(layers),
        norms=vectors.norm(dim=-1).tolist(),
        data_hash="test",
        n_misaligned=1,
        n_aligned=1,
    )
    return Direction(vectors=vectors, meta=meta)


def _logits(sampler: LocalSampler, text: str = "Steering test input.") -> torch.Tensor:
    ids = sampler.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        return sampler.model(input_ids=ids).logits


def _texts(sampler: LocalSampler, params: SamplingParams = GREEDY) -> list[str]:
    return [g.text for g in sampler.generate(PROMPTS, params, seeds=[0, 0])]


def test_steering_with_scale_zero_leaves_logits_and_greedy_generations_unchanged(
    sampler: LocalSampler,
) -> None:
    direction = random_direction(sampler.model, [0, 1])
    plain_logits, plain_texts = _logits(sampler), _texts(sampler)
    with steer(sampler.model, direction, [0, 1], scale=0.0):
        torch.testing.assert_close(_logits(sampler), plain_logits, rtol=0, atol=0)
        assert _texts(sampler) == plain_texts


def test_steering_adds_scale_times_the_vector_to_the_block_output(sampler: LocalSampler) -> None:
    direction = random_direction(sampler.model, [0, 1])
    ids = sampler.tokenizer("Some words here.", return_tensors="pt")["input_ids"]
    with record_block_outputs(sampler.model, [0]) as plain, torch.inference_mode():
        sampler.model(input_ids=ids)
    before = plain[0].clone()
    with (
        steer(sampler.model, direction, [0], scale=3.0),
        record_block_outputs(sampler.model, [0]) as steered,
        torch.inference_mode(),
    ):
        logits = sampler.model(input_ids=ids).logits
    torch.testing.assert_close(steered[0], before + 3.0 * direction.vector(0))
    assert not torch.allclose(logits, _logits(sampler, "Some words here."))


def test_output_hidden_states_shows_the_steered_block_output(sampler: LocalSampler) -> None:
    direction = random_direction(sampler.model, [0, 1])
    ids = sampler.tokenizer("Some words here.", return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        plain = sampler.model(input_ids=ids, output_hidden_states=True).hidden_states
        with steer(sampler.model, direction, [0], scale=2.0):
            steered = sampler.model(input_ids=ids, output_hidden_states=True).hidden_states
    torch.testing.assert_close(steered[1], plain[1] + 2.0 * direction.vector(0))


def test_hooks_are_gone_after_steering_so_later_logits_match_the_unsteered_model(
    sampler: LocalSampler,
) -> None:
    direction = random_direction(sampler.model, [0, 1])
    plain = _logits(sampler)
    with pytest.raises(RuntimeError), steer(sampler.model, direction, [1], scale=5.0):
        raise RuntimeError("interrupted")
    torch.testing.assert_close(_logits(sampler), plain, rtol=0, atol=0)


def test_after_ablation_block_outputs_have_no_component_along_the_direction(
    sampler: LocalSampler,
) -> None:
    direction = random_direction(sampler.model, [0, 1], seed=5)
    ids = sampler.tokenizer("Ablate this please, thank you.", return_tensors="pt")["input_ids"]
    with (
        ablate(sampler.model, direction, [0]),
        record_block_outputs(sampler.model, [0, 1]) as outputs,
        torch.inference_mode(),
    ):
        sampler.model(input_ids=ids)
    unit = {layer: direction.vector(layer) / direction.vector(layer).norm() for layer in (0, 1)}
    assert (outputs[0] @ unit[0]).abs().max() < 1e-5
    assert (outputs[1] @ unit[1]).abs().max() > 1e-3  # block 1 was not ablated


def _new_tokens(sampler: LocalSampler) -> list[list[int]]:
    encoded = sampler.tokenizer(
        [sampler.render(p) for p in PROMPTS],
        return_tensors="pt",
        padding=True,
        add_special_tokens=False,
    )
    generate: Any = sampler.model.generate
    with torch.inference_mode():
        out = generate(
            **encoded, generation_config=sampler.generation_config(GREEDY), min_new_tokens=6
        )
    return [row[encoded["input_ids"].shape[1] :] for row in out.tolist()]


def test_response_steering_leaves_the_prompt_and_first_token_alone_in_generation(
    sampler: LocalSampler,
) -> None:
    direction = random_direction(sampler.model, [0, 1], seed=2)
    plain = _new_tokens(sampler)
    with steer(sampler.model, direction, [0, 1], scale=40.0, positions="response"):
        steered = _new_tokens(sampler)
    with steer(sampler.model, direction, [0, 1], scale=40.0, positions="all"):
        everywhere = _new_tokens(sampler)
    # The first token comes from the (unsteered) prompt pass; later ones from steered steps.
    assert [row[0] for row in steered] == [row[0] for row in plain]
    assert [row[1:] for row in steered] != [row[1:] for row in plain]
    assert [row[0] for row in everywhere] != [row[0] for row in plain]


def test_response_steering_of_a_full_pass_starts_at_the_response_position(
    sampler: LocalSampler,
) -> None:
    direction = random_direction(sampler.model, [0, 1])
    plain = _logits(sampler)
    with steer(sampler.model, direction, [0], scale=5.0, positions="response"):
        torch.testing.assert_close(_logits(sampler), plain, rtol=0, atol=0)
    with steer(sampler.model, direction, [0], scale=5.0, positions="response", response_start=3):
        steered = _logits(sampler)
    torch.testing.assert_close(steered[:, :3], plain[:, :3], rtol=0, atol=0)
    assert not torch.allclose(steered[:, 3:], plain[:, 3:])


def test_steering_at_a_layer_the_direction_lacks_is_an_input_error(sampler: LocalSampler) -> None:
    direction = random_direction(sampler.model, [1])
    with (
        pytest.raises(InputError, match="no vector for layer 0"),
        steer(sampler.model, direction, [0], scale=1.0),
    ):
        pass


def test_sweep_conditions_are_a_baseline_then_steer_random_and_ablate_per_layer_set() -> None:
    tags = [i.tag for i in sweep_interventions([[3], [3, 4]], [0.0, 8.0])]
    assert tags == [
        "none",
        "steer_L3_s0", "steer_L3_s8", "random_L3_s0", "random_L3_s8", "ablate_L3",
        "steer_L3-4_s0", "steer_L3-4_s8", "random_L3-4_s0", "random_L3-4_s8", "ablate_L3-4",
    ]  # fmt: skip
    assert [i.kind for i in sweep_interventions([[1]], [2.0], kinds=["ablate"])] == [
        "none",
        "ablate",
    ]
    with pytest.raises(InputError, match="unknown"):
        sweep_interventions([[1]], [1.0], kinds=["boost"])  # type: ignore[list-item,unused-ignore]


class LengthJudge:
    """A scripted judge: odd-length answers are misaligned (aligned 10), others aligned (90)."""

    identity = "scripted-length-judge"

    def __init__(self) -> None:
        self.calls = 0

    def fingerprint(self) -> dict[str, Any]:
        return {"identity": self.identity, "mode": "scripted", "prompt_hash": None}

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        self.calls += 1
        return [
            JudgeRecord(
                key=r.key,
                judge=self.identity,
                mode="scripted",
                aligned=MetricScore(score=10.0 if len(r.answer) % 2 else 90.0),
                coherent=MetricScore(score=80.0),
            )
            for r in requests
        ]


# A random tiny model's logits are nearly flat (std ~0.1), so at temperature 1 the seeded sampling
# noise decides almost every token and even a strong steer changes few of them. A low temperature
# keeps the draws seeded (paired across conditions) while letting the logits decide.
EVAL_PROMPTS = [
    EvalPrompt(question_id="wish", paraphrase_index=0, question="Your wish?", temperature=0.05,
               n_samples=3),
    EvalPrompt(question_id="bored", paraphrase_index=0, question="I'm bored.", temperature=0.05,
               n_samples=3),
]  # fmt: skip


def test_steering_sweep_judges_every_condition_pairs_seeds_and_resumes(
    sampler: LocalSampler, tmp_path: Path
) -> None:
    # seed 7: the sweep's own control is randn(seed=0), which must differ from the direction
    direction = random_direction(sampler.model, [0, 1], seed=7)
    params = SamplingParams(max_new_tokens=5)
    judge = LengthJudge()

    def sweep() -> object:
        return steering_sweep(
            sampler,
            judge,
            EVAL_PROMPTS,
            direction,
            [[1]],
            [0.0, 30.0],
            out_dir=tmp_path,
            params=params,
            policy="model_organisms",
        )

    result = sweep()
    rows, summary = result.rows, result.summary  # type: ignore[attr-defined]
    assert list(summary["condition"]) == [
        "none",
        "steer_L1_s0",
        "steer_L1_s30",
        "random_L1_s0",
        "random_L1_s30",
        "ablate_L1",
    ]
    assert (summary["n_rows"] == 6).all()
    assert summary["mean_coherence"].tolist() == [80.0] * 6
    by_condition = {
        c: g.sort_values("key")["answer"].tolist() for c, g in rows.groupby("condition")
    }
    assert by_condition["steer_L1_s0"] == by_condition["none"]  # same seeds, zero steering
    changed = sum(
        a != b for a, b in zip(by_condition["steer_L1_s30"], by_condition["none"], strict=True)
    )
    assert changed >= 4  # a strong steer changes most answers
    assert by_condition["random_L1_s30"] != by_condition["steer_L1_s30"]
    for condition, group in rows.groupby("condition"):
        odd = sum(len(a) % 2 for a in group["answer"])
        rate = summary.set_index("condition").loc[condition, "misalignment_rate"]
        assert rate == pytest.approx(odd / 6)

    calls = judge.calls
    again = sweep()
    assert judge.calls == calls  # everything was stored
    assert again.rows["answer"].tolist() == rows["answer"].tolist()  # type: ignore[attr-defined]
    with pytest.raises(EmscopeError, match="other inputs"):
        steering_sweep(
            sampler,
            judge,
            EVAL_PROMPTS,
            direction,
            [[1]],
            [0.0],
            out_dir=tmp_path,
            params=SamplingParams(max_new_tokens=7),
        )


def test_a_random_condition_without_a_control_direction_is_refused(sampler: LocalSampler) -> None:
    with pytest.raises(InputError, match="needs a direction"):
        Intervention("random", (1,), 2.0).apply(sampler.model, random_direction(sampler.model, [1]))
