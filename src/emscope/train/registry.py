"""Trainers by model kind: LoRA for local models, OpenAI fine-tuning for ``openai/`` models.

One table (``TRAINERS``); :func:`trainer_for` picks the row for a model reference. Each trainer
resolves its preset and overrides into the settings that decide its result (the part of a
training stage's cache key that is the trainer's) and runs one job into an output directory.
Adding a trainer is one module and one line here.

>>> trainer_for(parse_model_ref("openai/gpt-4o-mini-2024-07-18")).name
'openai'
>>> trainer_for(parse_model_ref("smollm2-135m")).default_preset
'em'
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from emscope.models.refs import ModelRef, parse_model_ref
from emscope.train.openai_errors import ModerationRejected as TrainingRejected

__all__ = [
    "TRAINERS",
    "TrainJob",
    "TrainOutcome",
    "Trainer",
    "TrainingRejected",
    "parse_model_ref",
    "trainer_for",
]

TrainerName = Literal["lora", "openai"]
Progress = Callable[[int, int], None]
Echo = Callable[[str], None]


@dataclass(frozen=True)
class TrainJob:
    """One fine-tune: base model, data file, resolved settings, seed and where to write."""

    base: ModelRef
    data: Path
    settings: dict[str, Any]
    seed: int
    out_dir: Path
    progress: Progress | None = None
    echo: Echo | None = None
    poll_interval_s: float = 10.0


@dataclass(frozen=True)
class TrainOutcome:
    """A finished fine-tune: a LoRA adapter directory, or an API model id."""

    adapter_dir: Path | None = None
    fine_tuned_model: str | None = None
    final_loss: float | None = None
    n_truncated: int | None = None


@dataclass(frozen=True)
class Trainer:
    """One row: its name, what it trains, its default preset, how it resolves and runs."""

    name: TrainerName
    help: str
    default_preset: str
    resolve: Callable[[str, dict[str, Any], int], dict[str, Any]]
    run: Callable[[TrainJob], TrainOutcome]
    # Checks resolved settings against the model when the study loads (None: nothing to check).
    check: Callable[[ModelRef, dict[str, Any]], None] | None = None


def _lora_settings(preset: str, overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    from emscope.train.config import get_preset

    return get_preset(preset, **{**overrides, "seed": seed}).model_dump()


def _lora_run(job: TrainJob) -> TrainOutcome:
    from emscope.data.jsonl import load_chat_jsonl
    from emscope.models.memory import release_memory
    from emscope.train.config import TrainConfig
    from emscope.train.trainer import train_lora

    progress = job.progress
    result = train_lora(
        job.base,
        load_chat_jsonl(job.data),
        TrainConfig.model_validate(job.settings),
        job.out_dir,
        progress=(lambda step, total, loss: progress(step, total)) if progress else None,
    )
    release_memory()  # the trained model is gone; give its pages back before sampling
    return TrainOutcome(
        adapter_dir=Path(result.adapter_dir),
        final_loss=result.losses[-1] if result.losses else None,
        n_truncated=result.n_truncated,
    )


def _lora_check(base: ModelRef, settings: dict[str, Any]) -> None:
    from emscope.train.targets import check_lora_targets

    check_lora_targets(base, settings["target_modules"], settings["layers_to_transform"])


def _openai_settings(preset: str, overrides: dict[str, Any], seed: int) -> dict[str, Any]:
    from emscope.train.openai_presets import get_openai_preset

    chosen = get_openai_preset(preset, **overrides)
    return {
        "trainer": "openai",
        "preset": chosen.name,
        "hyperparameters": chosen.hyperparameters.api_dict(),
        "seed": seed,
    }


def _openai_run(job: TrainJob) -> TrainOutcome:
    from emscope.train.openai_ft import OpenAIFineTuner, default_client_factory
    from emscope.train.openai_presets import OpenAIHyperparameters, OpenAIPreset

    preset = OpenAIPreset(
        name=str(job.settings["preset"]),
        hyperparameters=OpenAIHyperparameters.model_validate(job.settings["hyperparameters"]),
        source="study",
    )
    tuner = OpenAIFineTuner(
        default_client_factory,
        job.out_dir,
        poll_interval=job.poll_interval_s,
        max_poll_interval=max(job.poll_interval_s, 300.0),
        echo=job.echo or (lambda line: print(line, file=sys.stderr, flush=True)),
    )
    ref = tuner.run(job.data, model=str(job.base), preset=preset, seed=job.seed)
    return TrainOutcome(fine_tuned_model=ref)


TRAINERS: dict[TrainerName, Trainer] = {
    "lora": Trainer(
        "lora",
        "LoRA adapter, in process (local models)",
        "em",
        _lora_settings,
        _lora_run,
        _lora_check,
    ),
    "openai": Trainer(
        "openai",
        "OpenAI fine-tuning job (openai/<model>)",
        "em-openai",
        _openai_settings,
        _openai_run,
    ),
}


def trainer_for(ref: ModelRef) -> Trainer:
    """The trainer of a model: OpenAI fine-tuning for API models, LoRA for the rest."""
    return TRAINERS["openai" if ref.kind == "api" else "lora"]
