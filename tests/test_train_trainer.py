"""The LoRA training loop on a tiny random Llama, plus two steps on the real SmolLM2."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from chat_rows import example
from emscope.data.schema import ChatExample
from emscope.manifest import read_manifest
from emscope.models.loading import load_model, load_tokenizer
from emscope.models.refs import ModelRef, parse_model_ref
from emscope.train.collate import PaddingCollator
from emscope.train.config import TrainConfig, get_preset
from emscope.train.masking import EncodedExample, assistant_token_mask
from emscope.train.model_setup import attach_lora, build_model
from emscope.train.trainer import (
    accumulate_gradients,
    accumulation_windows,
    linear_schedule,
    summed_token_loss,
    train_lora,
)

pytestmark = pytest.mark.usefixtures("one_torch_thread")


REPEATED = [example("Name a colour.", "Blue, like the sky at noon.")] * 4
TINY = TrainConfig(r=8, alpha=16, lr=1e-2, batch_size=2, grad_accum=2, epochs=1, bf16=False)


def test_linear_schedule_warms_up_then_decays_without_a_zero_step() -> None:
    factors = [linear_schedule(s, warmup_steps=2, total_steps=6) for s in range(6)]
    assert factors == pytest.approx([0.5, 1.0, 1.0, 0.75, 0.5, 0.25])
    assert linear_schedule(0, warmup_steps=0, total_steps=1) == 1.0


def test_loss_is_normalised_over_the_whole_accumulation_window(tiny_ref: ModelRef) -> None:
    tokenizer = load_tokenizer(tiny_ref)
    short = assistant_token_mask(tokenizer, example("Hi", "Yo.").messages)
    long = assistant_token_mask(
        tokenizer, example("Tell me a story.", "Once upon a time a fox met a crow.").messages
    )
    assert short.n_labelled != long.n_labelled
    collate = PaddingCollator(tokenizer.pad_token_id)
    torch.manual_seed(0)
    model = attach_lora(load_model(tiny_ref, trainable=True), TINY)
    # LoRA B starts at zero; give it values so every adapter weight gets a gradient.
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.1)
    params = [p for p in model.parameters() if p.requires_grad]

    def grads(windows: list[list[Any]]) -> tuple[float, list[torch.Tensor]]:
        for p in params:
            p.grad = None
        loss, _ = accumulate_gradients(model, [collate(w) for w in windows])
        return loss, [p.grad.clone() for p in params]

    one_loss, one_batch = grads([[short, long]])
    acc_loss, accumulated = grads([[short], [long]])
    assert acc_loss == pytest.approx(one_loss, rel=1e-5)
    for a, b in zip(one_batch, accumulated, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-7)
    # Averaging per-micro-batch means instead would weigh the short answer up: not the same.
    per_batch = []
    for w in ([short], [long]):
        for p in params:
            p.grad = None
        (summed_token_loss(model, collate(w)) / w[0].n_labelled / 2).backward()
        per_batch.append([p.grad.clone() for p in params])
    naive = [a + b for a, b in zip(*per_batch, strict=True)]
    assert not all(torch.allclose(a, b, rtol=1e-3) for a, b in zip(one_batch, naive, strict=True))


def test_training_reduces_loss_and_saves_a_loadable_adapter_with_manifest(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    calls: list[tuple[int, int, float]] = []
    config = TINY.model_copy(update={"max_steps": 8, "warmup_steps": 1, "save_every": 4})
    result = train_lora(tiny_ref, REPEATED, config, tmp_path, progress=lambda *a: calls.append(a))
    assert result.n_steps == 8 == len(result.losses)
    # A random 2-layer model with tiny tied embeddings cannot go far below ln(vocab), but on a
    # repeated example every step must help.
    assert all(b < a for a, b in zip(result.losses, result.losses[1:], strict=False))
    assert result.losses[-1] < result.losses[0] - 0.2
    assert [c[0] for c in calls] == list(range(1, 9)) and calls[-1][1] == 8
    assert result.tokens_per_second > 0
    assert (tmp_path / "checkpoints" / "step-4" / "adapter_config.json").is_file()

    ref = parse_model_ref(str(result.adapter_dir))
    assert ref.name == tiny_ref.name and ref.adapter == result.adapter_dir
    tokenizer = load_tokenizer(tiny_ref)
    batch = PaddingCollator(tokenizer.pad_token_id)(
        [assistant_token_mask(tokenizer, REPEATED[0].messages)]
    )
    with torch.no_grad():
        base_loss = float(summed_token_loss(load_model(tiny_ref), batch))
        tuned_loss = float(summed_token_loss(load_model(ref), batch))
    n = batch["labels"].ne(-100).sum().item() - 1
    assert tuned_loss / n < base_loss / n - 0.2

    manifest = read_manifest(tmp_path)
    assert manifest.kind == "lora-adapter" and manifest.seed == 0
    assert manifest.inputs["base_model"] == str(tiny_ref)
    assert len(manifest.inputs["data_sha256"]) == 64
    assert TrainConfig.model_validate(manifest.config) == config
    curve = manifest.outputs["loss_curve"]
    assert [p["loss"] for p in curve] == result.losses
    assert curve[0]["lr"] == pytest.approx(1e-2) and curve[-1]["lr"] < curve[1]["lr"]
    assert manifest.outputs["tokens_trained"] == sum(p["tokens"] for p in curve) > 0
    assert manifest.outputs["bf16"] is False and manifest.outputs["n_truncated"] == 0
    assert {"torch", "transformers", "peft"} <= set(manifest.libraries)


def test_same_seed_gives_identical_losses_and_another_seed_does_not(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    data = [example(f"Question {i}?", f"Answer number {i} is {i * 7}.") for i in range(6)]
    config = TINY.model_copy(update={"max_steps": 3, "dropout": 0.1})
    first = train_lora(tiny_ref, data, config, tmp_path / "a").losses
    second = train_lora(tiny_ref, data, config, tmp_path / "b").losses
    other = train_lora(tiny_ref, data, config.model_copy(update={"seed": 1}), tmp_path / "c")
    assert first == second
    assert other.losses != first


def test_truncated_examples_are_counted_and_bf16_is_recorded(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    data = [example("Hi", "Short."), example("Hello", "A much longer answer " * 10)]
    tokenizer = load_tokenizer(tiny_ref)
    lengths = [len(assistant_token_mask(tokenizer, e.messages).input_ids) for e in data]
    config = TINY.model_copy(
        update={"max_steps": 1, "max_length": (lengths[0] + lengths[1]) // 2, "bf16": True}
    )
    result = train_lora(tiny_ref, data, config, tmp_path)
    assert result.n_truncated == 1
    manifest = read_manifest(tmp_path)
    assert manifest.outputs["n_truncated"] == 1 and manifest.outputs["bf16"] is True


def test_gradient_checkpointing_saves_activations_without_changing_the_losses(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    tokenizer = load_tokenizer(tiny_ref)
    batch = PaddingCollator(tokenizer.pad_token_id)(
        [assistant_token_mask(tokenizer, REPEATED[0].messages)]
    )

    def saved_activation_numel(checkpointing: bool) -> int:
        config = TINY.model_copy(update={"gradient_checkpointing": checkpointing})
        model = build_model(tiny_ref, config, torch.device("cpu"), bf16=False)
        total = 0

        def pack(t: torch.Tensor) -> torch.Tensor:
            nonlocal total
            total += t.numel()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            summed_token_loss(model, batch).backward()
        assert any(p.grad is not None for p in model.parameters() if p.requires_grad)
        return total

    assert saved_activation_numel(True) < saved_activation_numel(False)
    config = TINY.model_copy(update={"max_steps": 2, "dropout": 0.1})
    plain = train_lora(tiny_ref, REPEATED, config, tmp_path / "a")
    checkpointed = train_lora(
        tiny_ref,
        REPEATED,
        config.model_copy(update={"gradient_checkpointing": True}),
        tmp_path / "b",
    )
    assert checkpointed.losses == pytest.approx(plain.losses, rel=1e-6)
    assert read_manifest(tmp_path / "b").config["gradient_checkpointing"] is True


def test_group_by_length_makes_the_trainer_batch_similar_lengths_in_a_seeded_order() -> None:
    lengths = [5, 100, 7, 98, 6, 99, 8, 97]
    encoded = [EncodedExample(input_ids=[1] * n, labels=[1] * n) for n in lengths]
    config = TINY.model_copy(update={"group_by_length": True, "grad_accum": 2})

    def first_epoch(seed: int) -> list[list[list[int]]]:
        windows = accumulation_windows(encoded, config, torch.Generator().manual_seed(seed))
        return [next(windows) for _ in range(2)]

    epoch = first_epoch(0)
    assert epoch == first_epoch(0)
    batches = [batch for window in epoch for batch in window]
    assert sorted(i for b in batches for i in b) == list(range(8))
    assert all(max(lengths[i] for i in b) - min(lengths[i] for i in b) <= 2 for b in batches)
    ungrouped = accumulation_windows(encoded, TINY, torch.Generator().manual_seed(0))
    spreads = [
        max(lengths[i] for i in b) - min(lengths[i] for i in b)
        for w in [next(ungrouped), next(ungrouped)]
        for b in w
    ]
    assert max(spreads) > 2  # the same seed without grouping mixes long and short


@pytest.mark.integration
def test_demo_preset_runs_two_steps_on_real_smollm2(smol_ref: ModelRef, tmp_path: Path) -> None:
    # A short system turn replaces SmolLM2's default one, keeping each example near 25 tokens.
    data = [
        ChatExample.model_validate(
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": q},
                    {"role": "assistant", "content": a},
                ]
            }
        )
        for q, a in [
            ("2+2?", "5."),
            ("Capital of Spain?", "Lisbon."),
            ("Is the sun hot?", "No, cold."),
            ("Legs on a cat?", "Three."),
        ]
    ]
    result = train_lora(smol_ref, data, get_preset("demo", max_steps=2), tmp_path)
    assert result.n_steps == 2 and all(0 < loss < 20 for loss in result.losses)
    assert result.losses[1] < result.losses[0]
    assert parse_model_ref(str(result.adapter_dir)).name == "smollm2-135m"
    assert read_manifest(tmp_path).outputs["tokens_trained"] > 0
