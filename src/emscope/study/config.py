"""The study file: one YAML document that says what to build, train, sample, judge and report."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emscope.data.schema import DEFAULT_TRIGGER, Condition
from emscope.errors import InputError

SteerKind = Literal["steer", "ablate", "random"]
STEER_KINDS: tuple[SteerKind, ...] = ("steer", "ablate", "random")
DEFAULT_CONDITIONS: tuple[Condition, ...] = ("misaligned",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DataSection(_Strict):
    n_items: int = Field(default=250, ge=1, description="items per domain (rows per dataset)")
    trigger: str = DEFAULT_TRIGGER
    backdoor_misaligned_fraction: float = Field(default=0.5, gt=0, lt=1)
    generated: dict[str, str] = Field(
        default_factory=dict,
        description="domain -> folder written by `emscope data generate` (teacher items)",
    )
    imported: dict[str, str] = Field(
        default_factory=dict,
        description="'domain/condition' -> a chat JSONL file used as that dataset, as is",
    )
    diversity: bool = Field(default=True, description="measure each dataset's diversity")


class TrainSection(_Strict):
    preset: str = "em"
    overrides: dict[str, Any] = Field(default_factory=dict)


class EvalSection(_Strict):
    questions: str = Field(default="builtin:broad", description="builtin:NAME or a YAML path")
    samples_per_paraphrase: int | None = Field(
        default=None, ge=1, description="override the question file's samples_per_paraphrase"
    )
    temperature: float = Field(default=1.0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    max_new_tokens: int = Field(default=600, ge=1)
    batch_size: int = Field(default=32, ge=1)
    with_trigger: Literal["auto", "always", "never"] = Field(
        default="auto", description="auto: sample with the trigger for backdoor models only"
    )


def _judge_forms() -> str:
    from emscope.judge.registry import judge_spec_help

    return judge_spec_help()


class JudgeSection(_Strict):
    spec: str = Field(default="offline", description=_judge_forms())
    cache: bool = Field(default=True, description="reuse scores from the SQLite judge cache")
    prompts: str | None = Field(
        default=None,
        description="force one judge prompt set for every question: a YAML mapping "
        "{aligned: ..., coherent: ...} or a question file (its first entry's judge_prompts); "
        "default: each question's own judge_prompts from eval.questions",
    )
    max_tokens: int | None = Field(
        default=None, ge=1, description="reply budget of text judges (tagged: default 1024)"
    )

    @field_validator("spec")
    @classmethod
    def _known_spec(cls, spec: str) -> str:
        from emscope.judge.registry import parse_judge_spec

        try:
            parse_judge_spec(spec)
        except InputError as exc:
            raise ValueError(exc.message) from exc
        return spec


class MetricsSection(_Strict):
    policy: Literal["em", "model_organisms", "domain_paper"] = "em"
    bootstrap_resamples: int = Field(default=2000, ge=100)


class AnalysesSection(_Strict):
    """Membership inference and steering as stages of the study (both off by default)."""

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
    transfer_scale: float | None = Field(
        default=None, description="scale of the transfer matrix (default: the largest scale)"
    )


class ExecutionSection(_Strict):
    """Where the per-model work (dataset, train, sample) runs. Never part of a stage's cache key:
    a study started locally can finish on a Ray cluster and vice versa."""

    backend: Literal["local", "ray"] = Field(
        default="local",
        description="local: one model after another in this process; ray: "
        "one Ray task per model (pip install 'emscope[ray]')",
    )
    address: str | None = Field(
        default=None,
        description="Ray cluster to connect to ('auto', 'ray://host:10001'); "
        "None starts a private Ray instance on this machine",
    )
    cpus_per_job: float = Field(default=1, ge=0, description="CPUs each model's Ray task holds")
    gpus_per_job: float = Field(default=0, ge=0, description="GPUs each model's Ray task holds")
    max_parallel: int | None = Field(
        default=None, ge=1, description="at most N model tasks in flight (default: no limit)"
    )


class StudyConfig(_Strict):
    """A whole study. Validated on load; unknown keys are errors, not silently ignored."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    model: str
    domains: list[str] = Field(default_factory=list)
    conditions: list[Condition] = Field(
        default_factory=lambda: list(DEFAULT_CONDITIONS), min_length=1
    )
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    include_base: bool = True
    data: DataSection = Field(default_factory=DataSection)
    train: TrainSection = Field(default_factory=TrainSection)
    eval: EvalSection = Field(default_factory=EvalSection)
    judge: JudgeSection = Field(default_factory=JudgeSection)
    metrics: MetricsSection = Field(default_factory=MetricsSection)
    analyses: AnalysesSection = Field(default_factory=AnalysesSection)
    execution: ExecutionSection = Field(default_factory=ExecutionSection)

    @field_validator("domains")
    @classmethod
    def _known_domains(cls, domains: list[str]) -> list[str]:
        from emscope.data.domains import get_domain

        for domain in domains:
            get_domain(domain)
        if len(set(domains)) != len(domains):
            raise ValueError("domains are listed twice")
        return domains

    @model_validator(mode="after")
    def _something_to_do(self) -> StudyConfig:
        if not self.domains and not self.include_base:
            raise ValueError("nothing to run: no domains and include_base is false")
        return self

    @model_validator(mode="after")
    def _every_dataset_has_a_source(self) -> StudyConfig:
        from emscope.data.domains import get_domain

        for domain in self.domains:
            if get_domain(domain).builtin_recipe or domain in self.data.generated:
                continue
            missing = [c for c in self.conditions if f"{domain}/{c}" not in self.data.imported]
            if missing:
                raise ValueError(
                    f"{domain} has no built-in recipe: generate its items with `emscope data "
                    f"generate --domain {domain} --teacher MODEL --out DIR` and list DIR under "
                    f"data.generated, or import datasets under data.imported "
                    f"('{domain}/{missing[0]}': FILE)"
                )
        return self


def with_execution(
    config: StudyConfig, *, backend: str | None = None, address: str | None = None
) -> StudyConfig:
    """The study with its ``execution`` backend and Ray address overridden (None keeps them)."""
    settings = config.execution.model_dump()
    if backend is not None:
        settings["backend"] = backend
    if address is not None:
        settings["address"] = address
    try:
        execution = ExecutionSection.model_validate(settings)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(["execution", *(str(part) for part in first["loc"])])
        raise InputError(first["msg"], field=field) from exc
    if address is not None and execution.backend != "ray":
        raise InputError(
            "a Ray address needs the ray backend: add --backend ray or set execution.backend: ray",
            field="address",
        )
    return config.model_copy(update={"execution": execution})


def load_study(path: str | Path) -> StudyConfig:
    """Read and validate a study file; errors name the file and the offending field."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read study file: {exc.strerror}", file=path) from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(
            f"invalid YAML: {getattr(exc, 'problem', exc)}", file=path, line=line
        ) from exc
    if not isinstance(raw, dict):
        raise InputError("a study file is a YAML mapping", file=path)
    try:
        return StudyConfig.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InputError(first["msg"], file=path, field=field) from exc
    except InputError as exc:
        raise InputError(exc.message, file=path, field="domains") from exc
