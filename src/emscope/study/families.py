"""A study's model families resolved: the base model, its trainer and its sampling engine."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from emscope.errors import InputError
from emscope.models.refs import ModelRef, parse_model_ref
from emscope.sample.registry import ENGINES, check_engine_serves, default_engine, parse_engine
from emscope.train.registry import Trainer, trainer_for

if TYPE_CHECKING:  # the config validates families through this module
    from emscope.study.config import ModelFamily, TrainSection


@dataclass(frozen=True)
class Family:
    """One family, ready to run: ``engine`` is the registry name its samples go through;
    ``shared``: every model of the family samples through one engine of that name, once all
    are trained (:mod:`emscope.study.shared_sampling`)."""

    name: str
    ref: ModelRef
    trainer: Trainer
    engine: str
    train: TrainSection
    shared: bool = False

    @property
    def engine_label(self) -> str:
        return f"{self.engine} (one engine, every model)" if self.shared else self.engine

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
    shared = shares_engine(engine, family.shared_engine)
    resolved = Family(family.name, ref, trainer_for(ref), engine, family.train, shared)
    if check_presets:
        if engine.startswith("http:"):
            raise InputError(
                "an http: engine samples what its server serves; a family that fine-tunes "
                "needs engine transformers or vllm (or list no domains)",
                field="engine",
            )
        settings = resolved.train_settings(0)
        if resolved.trainer.check is not None:
            try:
                resolved.trainer.check(ref, settings)
            except InputError as exc:
                if exc.field in family.train.overrides:
                    raise
                raise InputError(
                    f"preset {resolved.preset!r}: {exc.message}", field="preset"
                ) from exc
    return resolved


def shares_engine(engine: str, asked: bool | None) -> bool:
    """Whether a family samples all its models through one engine: as asked, else by default
    for engines whose row says so (vLLM: one engine per model would reload the base each time).
    Asking for it on an engine that cannot hold several models is an InputError."""
    row = ENGINES[parse_engine(engine).name]
    if asked and row.shared is None:
        holders = ", ".join(name for name, e in ENGINES.items() if e.shared is not None)
        raise InputError(
            f"engine {engine!r} samples one model at a time; shared_engine needs one of: {holders}",
            field="shared_engine",
        )
    return row.shared_by_default if asked is None else asked
