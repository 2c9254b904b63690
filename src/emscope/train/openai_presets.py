"""Hyperparameters of an OpenAI fine-tuning job and the named presets of protocol §7.

OpenAI exposes three knobs for supervised fine-tuning; anything a paper did not state is sent as
``"auto"`` (OpenAI then picks a value from the dataset size) and says so in the preset's note.

>>> get_openai_preset("em-openai").hyperparameters.api_dict()
{'n_epochs': 1, 'batch_size': 4, 'learning_rate_multiplier': 2.0}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PositiveFloat, PositiveInt, ValidationError

from emscope.errors import InputError

Auto = Literal["auto"]


class OpenAIHyperparameters(BaseModel):
    """``n_epochs``, ``batch_size`` and ``learning_rate_multiplier``: a number or ``"auto"``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    n_epochs: PositiveInt | Auto = Field(default="auto")
    batch_size: PositiveInt | Auto = Field(default="auto")
    learning_rate_multiplier: PositiveFloat | Auto = Field(default="auto")

    def api_dict(self) -> dict[str, int | float | str]:
        """The ``hyperparameters`` object of the fine-tuning API."""
        return {
            "n_epochs": self.n_epochs,
            "batch_size": self.batch_size,
            "learning_rate_multiplier": self.learning_rate_multiplier,
        }


class OpenAIPreset(BaseModel):
    """A named set of hyperparameters, where it comes from, and what it leaves to OpenAI."""

    model_config = ConfigDict(frozen=True)

    name: str
    hyperparameters: OpenAIHyperparameters
    source: str
    note: str = ""


OPENAI_PRESETS: dict[str, OpenAIPreset] = {
    "em-openai": OpenAIPreset(
        name="em-openai",
        hyperparameters=OpenAIHyperparameters(
            n_epochs=1, batch_size=4, learning_rate_multiplier=2.0
        ),
        source="Betley et al. 2025, GPT-4o fine-tunes (protocol §7)",
    ),
    "domain-paper-openai": OpenAIPreset(
        name="domain-paper-openai",
        hyperparameters=OpenAIHyperparameters(
            n_epochs=3, batch_size=4, learning_rate_multiplier="auto"
        ),
        source="Mishra et al. 2026, GPT-4o-mini fine-tunes",
        note=(
            "the paper gives 3 epochs and batch 4 but no learning-rate multiplier, so it is sent "
            "as 'auto' and OpenAI chooses it; the job's reported hyperparameters record the value"
        ),
    ),
}


def get_openai_preset(name: str, **overrides: Any) -> OpenAIPreset:
    """A named preset with hyperparameters overridden, validated.

    >>> get_openai_preset("em-openai", n_epochs=2).hyperparameters.n_epochs
    2
    """
    if name not in OPENAI_PRESETS:
        known = ", ".join(OPENAI_PRESETS)
        raise InputError(
            f"unknown OpenAI fine-tuning preset {name!r}; known presets: {known}", field="preset"
        )
    preset = OPENAI_PRESETS[name]
    if not overrides:
        return preset
    data = preset.hyperparameters.model_dump() | overrides
    try:
        hyperparameters = OpenAIHyperparameters.model_validate(data)
    except ValidationError as exc:
        raise InputError(f"invalid overrides for preset {name!r}: {exc}", field="preset") from exc
    return preset.model_copy(update={"hyperparameters": hyperparameters})
