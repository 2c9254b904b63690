"""Checkpoints and resume: an interrupted run ends exactly where an uninterrupted one does."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from emscope.data.schema import ChatExample
from emscope.manifest import read_manifest
from emscope.models.refs import ModelRef, parse_model_ref
from emscope.train.checkpoint import (
    TENSORS_FILE,
    CheckpointInfo,
    CheckpointMismatchError,
    list_checkpoints,
    read_state,
    run_fingerprint,
)
from emscope.train.config import TrainConfig
from emscope.train.trainer import TrainResult, train_lora

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def example(i: int) -> ChatExample:
    return ChatExample.model_validate(
        {
            "messages": [
                {"role": "user", "content": f"Question {i}?"},
                {"role": "assistant", "content": f"Answer {i} is {i * 7}" + "!" * i},
            ]
        }
    )


DATA = [example(i) for i in range(8)]
# 4 steps per epoch, so the checkpoint at step 3 is mid-epoch and the run crosses an epoch.
# Dropout makes the result depend on the restored torch RNG.
CONFIG = TrainConfig(
    r=4,
    alpha=8,
    dropout=0.1,
    lr=5e-3,
    batch_size=2,
    grad_accum=1,
    warmup_steps=2,
    weight_decay=0.01,
    max_steps=6,
    save_every=3,
    bf16=False,
)


class Interrupt(Exception):
    pass


def interrupt_at(step: int) -> Any:
    def progress(done: int, total: int, loss: float) -> None:
        if done == step:
            raise Interrupt

    return progress


def noisy_hook(info: CheckpointInfo) -> dict[str, Any]:
    """An evaluation that draws random numbers, as sampling does; training must not notice."""
    return {"draw": float(torch.rand(())) + random.random(), "n_losses": len(info.losses)}


def adapter_weights(directory: Path) -> dict[str, torch.Tensor]:
    return load_file(str(directory / "adapter_model.safetensors"))


@pytest.fixture(scope="module")
def runs(tiny_ref: ModelRef, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("resume")
    plain = train_lora(tiny_ref, DATA, CONFIG, root / "a")
    with pytest.raises(Interrupt):
        train_lora(
            tiny_ref, DATA, CONFIG, root / "b", progress=interrupt_at(3), on_checkpoint=noisy_hook
        )
    after_interrupt = [step for step, _ in list_checkpoints(root / "b")]
    shutil.copytree(root / "b", root / "b-interrupted")
    # save_every may change on resume; the extra checkpoint runs the noisy hook mid-training.
    denser = CONFIG.model_copy(update={"save_every": 2})
    resumed = train_lora(tiny_ref, DATA, denser, root / "b", on_checkpoint=noisy_hook)
    torch.set_num_threads(previous)
    return {"root": root, "plain": plain, "resumed": resumed, "after_interrupt": after_interrupt}


def test_resumed_run_matches_the_uninterrupted_run_in_losses_and_adapter_weights(
    runs: dict[str, Any],
) -> None:
    plain: TrainResult = runs["plain"]
    resumed: TrainResult = runs["resumed"]
    assert runs["after_interrupt"] == [3]
    assert resumed.resumed_from_step == 3 and plain.resumed_from_step is None
    assert len(resumed.losses) == 6
    assert resumed.losses == pytest.approx(plain.losses, rel=1e-6, abs=0)
    a, b = adapter_weights(plain.adapter_dir), adapter_weights(resumed.adapter_dir)
    assert a.keys() == b.keys() and len(a) > 0
    for name in a:
        torch.testing.assert_close(a[name], b[name], rtol=1e-6, atol=1e-8)
    curve_a = read_manifest(runs["root"] / "a").outputs["loss_curve"]
    curve_b = read_manifest(runs["root"] / "b").outputs["loss_curve"]
    assert [p["lr"] for p in curve_a] == pytest.approx([p["lr"] for p in curve_b])
    assert [p["tokens"] for p in curve_a] == [p["tokens"] for p in curve_b]


def test_checkpoint_holds_a_loadable_adapter_and_tensor_only_trainer_state(
    runs: dict[str, Any],
) -> None:
    directory = runs["root"] / "b-interrupted" / "checkpoints" / "step-3"
    assert parse_model_ref(str(directory)).adapter == directory
    tensors = torch.load(directory / TENSORS_FILE, weights_only=True)
    assert set(tensors) >= {"optimizer", "scheduler", "torch_rng"}
    assert tensors["optimizer"]["state"] and tensors["scheduler"]["last_epoch"] == 3
    state = read_state(directory)
    assert state.step == 3 and state.total_steps == 6 and len(state.curve) == 3
    assert state.python_rng and len(state.last_window) == 1
    assert [e["step"] for e in state.checkpoint_evals] == [3]
    assert state.fingerprint == read_state(directory).fingerprint
    plain_losses = runs["plain"].losses
    assert [p["loss"] for p in state.curve] == pytest.approx(plain_losses[:3], rel=1e-6)


def test_evaluations_survive_the_interruption_and_reach_the_manifest(
    runs: dict[str, Any],
) -> None:
    evals = runs["resumed"].checkpoint_evals
    assert [(e["step"], e["final"]) for e in evals] == [(3, False), (4, False), (6, True)]
    assert [e["adapter_dir"] for e in evals] == [
        "checkpoints/step-3",
        "checkpoints/step-4",
        "adapter",
    ]
    assert [e["n_losses"] for e in evals] == [3, 4, 6]
    manifest = read_manifest(runs["root"] / "b")
    assert manifest.outputs["checkpoint_evals"] == evals
    assert manifest.outputs["resumed_from_step"] == 3
    assert manifest.outputs["checkpoints"] == ["checkpoints/step-3", "checkpoints/step-4"]


def test_resume_refuses_checkpoints_of_another_run_and_can_start_over(
    runs: dict[str, Any], tiny_ref: ModelRef
) -> None:
    out = runs["root"] / "other"
    shutil.copytree(runs["root"] / "b-interrupted", out)
    changed = CONFIG.model_copy(update={"lr": 1e-3, "max_steps": 1})
    with pytest.raises(CheckpointMismatchError, match="config_sha256"):
        train_lora(tiny_ref, DATA, changed, out)
    with pytest.raises(CheckpointMismatchError, match="data_sha256"):
        train_lora(tiny_ref, DATA[:-1], CONFIG, out)
    result = train_lora(tiny_ref, DATA, changed, out, resume=False)
    assert result.resumed_from_step is None and len(result.losses) == 1
    assert list_checkpoints(out) == []


def test_an_evaluation_cut_off_by_a_crash_is_run_when_resuming(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    config = CONFIG.model_copy(update={"max_steps": 2, "save_every": 1, "dropout": 0.0})
    seen: list[int] = []

    def crashing(info: CheckpointInfo) -> dict[str, Any]:
        raise Interrupt

    def recording(info: CheckpointInfo) -> dict[str, Any]:
        seen.append(info.step)
        assert info.model_ref.adapter == info.adapter_dir
        return {"ok": True}

    with pytest.raises(Interrupt):
        train_lora(tiny_ref, DATA, config, tmp_path, on_checkpoint=crashing)
    result = train_lora(tiny_ref, DATA, config, tmp_path, on_checkpoint=recording)
    assert result.resumed_from_step == 1 and seen == [1, 2]
    assert [e["step"] for e in result.checkpoint_evals] == [1, 2]


def test_hook_returning_something_other_than_json_is_a_named_error(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    config = CONFIG.model_copy(update={"max_steps": 1, "save_every": None})
    with pytest.raises(Exception, match="not JSON"):
        train_lora(tiny_ref, DATA, config, tmp_path, on_checkpoint=lambda info: {"x": object()})


def test_only_complete_checkpoints_are_listed_latest_last(tmp_path: Path) -> None:
    for name in ("step-2", "step-10", "step-7.partial", "step-5"):
        (tmp_path / "checkpoints" / name).mkdir(parents=True)
    for name in ("step-2", "step-10", "step-7.partial"):
        (tmp_path / "checkpoints" / name / "state.json").write_text("{}")
        (tmp_path / "checkpoints" / name / TENSORS_FILE).write_bytes(b"")
    assert [step for step, _ in list_checkpoints(tmp_path)] == [2, 10]
    assert list_checkpoints(tmp_path / "missing") == []


def test_fingerprint_ignores_logging_and_memory_settings_but_not_the_recipe() -> None:
    def fingerprint(config: TrainConfig) -> dict[str, str]:
        return run_fingerprint(
            base_model="m",
            data_sha256="d",
            validation_sha256=None,
            chat_template_sha256="t",
            config=config,
        )

    base = fingerprint(CONFIG)
    neutral = CONFIG.model_copy(
        update={"log_every": 5, "save_every": 1, "gradient_checkpointing": True}
    )
    assert fingerprint(neutral) == base
    for change in ({"lr": 1e-4}, {"seed": 1}, {"max_steps": 7}, {"bf16": True}):
        assert fingerprint(CONFIG.model_copy(update=change)) != base
    assert json.dumps(base)  # stored as JSON in every checkpoint
