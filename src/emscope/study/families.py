"""A study's model families resolved: the base model, its trainer and its sampling engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emscope.errors import InputError
from emscope.models.refs import ModelRef, parse_model_ref
from emscope.sample.registry import check_engine_serves, default_engine
from emscope.train.registry import Trainer, trainer_for

if TYPE_CHECKING:  # the config validates families through this module
    from emscope.study.config import ModelFamily, TrainSection


@dataclass(frozen=True)
class Family:
    """One family, ready to run: ``engine`` is the registry name its samples go through."""

    name: str
    ref: ModelRef
    trainer: Trainer
    engine: str
    train: TrainSection

    @property
    def preset(self) -> str:
        return self.train.preset or self.trainer.default_preset

    def train_settings(self, seed: int) -> dict[str, Any]:
        """The trainer's resolved settings (its share of the training stage's cache key)."""
        return self.trainer.resolve(self.preset, dict(self.train.overrides), seed)


def resolve_family(family: ModelFamily, *, check_presets: bool = True) -> Family:
    """Parse the family's model and engine; with ``check_presets`` (a study that fine-tunes),
    resolve its preset too, so an unknown preset or a bad override fails when the study loads,
    not after sampling. With an ``http:`` engine ``model`` is the name the server serves, and
    the family cannot fine-tune (the server cannot load the adapters emscope trains)."""
    if family.engine and family.engine.startswith("http:"):
        # A server samples the model it serves, under the name it serves it by.
        ref = ModelRef(kind="hub", name=family.model)
    else:
        ref = parse_model_ref(family.model)
    engine = family.engine or default_engine(ref)
    check_engine_serves(engine, ref)
    resolved = Family(family.name, ref, trainer_for(ref), engine, family.train)
    if check_presets:
        if engine.startswith("http:"):
            raise InputError(
                "an http: engine samples what its server serves; a family that fine-tunes "
                "needs engine transformers or vllm (or list no domains)",
                field="engine",
            )
        resolved.train_settings(0)
    return resolved
