"""The ``analyses`` section of a study file: membership inference and steering settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

SteerKind = Literal["steer", "ablate", "random"]
STEER_KINDS: tuple[SteerKind, ...] = ("steer", "ablate", "random")
DEFAULT_TRANSFER_SHARE = 0.25


class AnalysesSection(BaseModel):
    """Membership inference and steering as stages of the study (both off by default)."""

    model_config = ConfigDict(extra="forbid")

    mia: bool = Field(default=False, description="membership inference vs misalignment")
    steering: bool = Field(default=False, description="directions, steering sweep, transfer")
    rate_policy: Literal["em", "model_organisms", "domain_paper"] = Field(
        default="domain_paper",
        description="counting rule of the rates used here (the domain paper's analysis rule)",
    )
    mia_members: int | None = Field(
        default=None, ge=2, description="score a seeded sample of N training rows (default: all)"
    )
    mia_nonmembers: int | None = Field(
        default=None, ge=2, description="held-out rows per domain (default: as many as members)"
    )
    mia_lowercase: bool = Field(default=False, description="also the lowercase score (2nd pass)")
    mia_batch_size: int = Field(default=8, ge=1)
    mia_prior: bool = Field(
        default=False,
        description="the pre-fine-tuning prior: each domain's training rows scored under the "
        "un-fine-tuned model minus under mia_reference, correlated with the domains' rates",
    )
    mia_reference: str | None = Field(
        default=None,
        description="the reference model of the prior: the family's non-instruct (pretrained) "
        "base, as a local model reference (alias, directory or hub id)",
    )
    steer_layers: list[int] | None = Field(
        default=None, description="block indices of the sweep (default: the middle block)"
    )
    steer_scales: list[float] = Field(default_factory=lambda: [0.0, 4.0, 8.0], min_length=1)
    steer_kinds: list[SteerKind] = Field(default_factory=lambda: list(STEER_KINDS), min_length=1)
    steer_questions: int = Field(default=4, ge=1, description="first N prompts of the suite")
    steer_samples: int = Field(default=2, ge=1, description="samples per prompt")
    steer_max_new_tokens: int | None = Field(
        default=None, ge=1, description="answer length when steering (default: eval's)"
    )
    transfer_training_directions: bool = Field(
        default=False,
        description="also transfer directions built from training answers (the fallback when "
        "a model has too few judged answers: a content direction); always labelled",
    )
    transfer_scale: float | None = Field(
        default=None,
        description="RAW mode: one coefficient on every raw direction (their norms differ by "
        "domain, so direction and norm are confounded); used only when set and "
        "transfer_norm_share is not",
    )
    transfer_norm_share: float | None = Field(
        default=None,
        gt=0,
        description="MATCHED mode (the default, share "
        f"{DEFAULT_TRANSFER_SHARE:g}): every added vector has norm share x the target model's "
        "answer-activation norm at the steered block, plus a seeded random control per target",
    )

    def transfer_mode(self) -> tuple[Literal["matched", "raw"], float]:
        """``("matched", share)``, or ``("raw", scale)`` when only ``transfer_scale`` is set."""
        if self.transfer_scale is None:
            return "matched", self.transfer_norm_share or DEFAULT_TRANSFER_SHARE
        return "raw", self.transfer_scale

    @field_validator("mia_reference")
    @classmethod
    def _a_local_model(cls, text: str | None) -> str | None:
        from emscope.errors import EmscopeError
        from emscope.models.refs import parse_model_ref

        if text is None:
            return None
        try:
            ref = parse_model_ref(text)
        except EmscopeError as exc:
            raise ValueError(f"mia_reference: {exc}") from exc
        if ref.kind == "api" or ref.adapter is not None:
            raise ValueError(
                f"mia_reference {text!r}: the prior scores token log-probs, so it needs a local "
                "base model (no API model, no adapter)"
            )
        return text

    @model_validator(mode="after")
    def _one_transfer_mode(self) -> AnalysesSection:
        if self.transfer_scale is not None and self.transfer_norm_share is not None:
            raise ValueError(
                "analyses.transfer_scale (raw vectors) and analyses.transfer_norm_share "
                "(matched norms) choose different transfer modes: set one"
            )
        return self

    @model_validator(mode="after")
    def _prior_names_its_reference(self) -> AnalysesSection:
        if self.mia_prior and self.mia_reference is None:
            raise ValueError(
                "analyses.mia_prior needs analyses.mia_reference: the non-instruct base model "
                "the un-fine-tuned model's scores are adjusted by"
            )
        return self
