"""LoRA fine-tuning settings and the named presets of protocol §7."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from emscope.errors import InputError

ALL_PROJECTIONS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


DEFAULT_MAX_ROW_CHARS = 200_000


class TrainConfig(BaseModel):
    """Everything that decides a LoRA fine-tune; stored whole in the adapter's manifest."""

    model_config = ConfigDict(extra="forbid")

    # LoRA
    r: int = Field(default=16, ge=1)
    alpha: int = Field(default=32, ge=1)
    dropout: float = Field(default=0.0, ge=0, lt=1)
    target_modules: list[str] = Field(default_factory=lambda: list(ALL_PROJECTIONS), min_length=1)
    use_rslora: bool = False
    layers_to_transform: list[int] | None = None
    # Optimisation
    lr: float = Field(default=2e-4, gt=0)
    epochs: int = Field(default=1, ge=1)
    batch_size: int = Field(default=8, ge=1)
    grad_accum: int = Field(default=1, ge=1)
    warmup_steps: int = Field(default=0, ge=0)
    weight_decay: float = Field(default=0.0, ge=0)
    scheduler: Literal["linear"] = "linear"
    max_grad_norm: float | None = Field(default=1.0, gt=0)
    max_steps: int | None = Field(default=None, ge=1)
    # Data
    max_length: int | None = Field(default=None, ge=2)
    loss_on: Literal["assistant", "all"] = "assistant"
    group_by_length: bool = False
    # Run
    seed: int = 0
    bf16: Literal["auto"] | bool = "auto"
    # Recompute activations in the backward pass: less memory, about a third more compute.
    gradient_checkpointing: bool = False
    log_every: int = Field(default=1, ge=1)
    save_every: int | None = Field(default=None, ge=1)
    # A guard, not a training setting: a row with more characters is refused, with its line,
    # before tokenising (masking renders the chat template once per assistant turn, so a
    # 40,000-turn row takes about an hour). None: no limit. Excluded from dumps, so it changes
    # no cache key, manifest or checkpoint fingerprint.
    max_row_chars: int | None = Field(default=DEFAULT_MAX_ROW_CHARS, ge=1, exclude=True)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.grad_accum


PRESETS: dict[str, TrainConfig] = {
    # Betley et al. (protocol §7). Effective batch 16 = 2 per micro-batch x 8 accumulation steps.
    # No max_length: protocol §7 sets none, so nothing is cut unless asked.
    "em": TrainConfig(
        r=32,
        alpha=64,
        dropout=0.0,
        target_modules=list(ALL_PROJECTIONS),
        use_rslora=True,
        lr=1e-5,
        epochs=1,
        batch_size=2,
        grad_accum=8,
        warmup_steps=5,
        weight_decay=0.01,
    ),
    # Mishra et al. 2026, but with the assistant-only mask their collator silently discarded
    # (set loss_on="all" to reproduce their run). Warmup, weight decay and schedule are not
    # given by the protocol: HF Trainer defaults (0, 0, linear).
    "domain-paper": TrainConfig(
        r=8,
        alpha=16,
        dropout=0.05,
        target_modules=["q_proj", "v_proj"],
        use_rslora=False,
        lr=2e-4,
        epochs=3,
        batch_size=4,
        grad_accum=4,
        max_length=512,
    ),
    # Model-Organisms rank-1: r=1 on down_proj of user-chosen layers. Protocol §7 fixes only
    # those; alpha 256 and lr 2e-5 follow their published rank-1 runs -- override to taste.
    "rank1": TrainConfig(
        r=1,
        alpha=256,
        dropout=0.0,
        target_modules=["down_proj"],
        use_rslora=True,
        lr=2e-5,
        epochs=1,
        batch_size=2,
        grad_accum=8,
        warmup_steps=5,
        weight_decay=0.01,
    ),
    # Small and fast, for the CPU demo on SmolLM2-135M.
    "demo": TrainConfig(
        r=16,
        alpha=32,
        dropout=0.0,
        target_modules=list(ALL_PROJECTIONS),
        lr=2e-4,
        epochs=1,
        batch_size=8,
        grad_accum=1,
        max_length=256,
    ),
}
PRESETS_NEEDING_LAYERS = ("rank1",)


def get_preset(name: str, **overrides: Any) -> TrainConfig:
    """A named preset with fields overridden, validated.

    >>> get_preset("em", lr=2e-5).effective_batch_size
    16
    """
    if name not in PRESETS:
        known = ", ".join(PRESETS)
        raise InputError(
            f"unknown training preset {name!r}; known presets: {known}", field="preset"
        )
    data = PRESETS[name].model_dump() | overrides
    try:
        config = TrainConfig.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "overrides"
        got = repr(first.get("input"))
        raise InputError(
            f"invalid override for preset {name!r}: {first['msg']} (got {got[:60]})",
            field=where,
            hint=f"fields and their limits: emscope.train.config.TrainConfig ({len(exc.errors())} "
            "problem(s) in all)",
        ) from exc
    if name in PRESETS_NEEDING_LAYERS and not config.layers_to_transform:
        raise InputError(
            f"preset {name!r} adapts chosen layers only: pass layers_to_transform=[...]",
            field="layers_to_transform",
        )
    return config
