"""The study file: one YAML document that says what to build, train, sample, judge and report."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from emscope.data.schema import DEFAULT_TRIGGER, Condition
from emscope.data.sources import ArchiveSpec, DatasetSource, dataset_source
from emscope.errors import InputError
from emscope.sample.registry import engine_help
from emscope.study.analysis_settings import STEER_KINDS, AnalysesSection, SteerKind
from emscope.study.judge_settings import JudgeSection
from emscope.study.validate import (
    as_input_error,
    check_config,
    check_inputs,
    listed_once,
    plain_name,
    read_study_yaml,
)

SHARED_HELP = (
    "sample every model of the family (base and each adapter, with and without the trigger) "
    "through one engine once all are trained (default: on for vllm, off for transformers)"
)

__all__ = [
    "STEER_KINDS",
    "AnalysesSection",
    "JudgeSection",
    "SteerKind",
    "StudyConfig",
    "load_study",
    "stored_study",
]

DEFAULT_CONDITIONS: tuple[Condition, ...] = ("misaligned",)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ArchiveSection(_Strict):
    """The domain paper's passphrase-encrypted archive, used as a whole."""

    path: str
    passphrase_env: str = Field(
        default="EMSCOPE_ARCHIVE_PASSPHRASE", description="variable holding the passphrase"
    )
    size: Literal["full", "small"] = Field(
        default="full", description="full: data/ and backdoor/; small: small/, backdoor-small/"
    )
    files: dict[str, str] = Field(
        default_factory=dict, description="file stem -> domain where the names differ"
    )


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
    archive: ArchiveSection | None = Field(
        default=None, description="the domain paper's dataset.zip.age, mapped onto domains"
    )
    diversity: bool = Field(default=True, description="measure each dataset's diversity")

    def source(self, domain: str, condition: Condition) -> DatasetSource:
        """Where ``domain/condition``'s dataset comes from (:mod:`emscope.data.sources`)."""
        archive = None
        if self.archive is not None:
            archive = ArchiveSpec(
                path=self.archive.path,
                passphrase_env=self.archive.passphrase_env,
                size=self.archive.size,
                files=tuple(sorted(self.archive.files.items())),
            )
        return dataset_source(
            domain, condition, imported=self.imported, generated=self.generated, archive=archive
        )


class TrainSection(_Strict):
    preset: str | None = Field(
        default=None, description="training preset (default: em for LoRA, em-openai for OpenAI)"
    )
    overrides: dict[str, Any] = Field(default_factory=dict)
    poll_interval_s: float = Field(
        default=10.0, gt=0, description="OpenAI fine-tuning: first wait between status checks"
    )


class ModelFamily(_Strict):
    """One model family of a study: a base model, how it is trained and how it samples."""

    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    model: str
    train: TrainSection = Field(default_factory=TrainSection)
    engine: str | None = Field(default=None, description=engine_help())
    shared_engine: bool | None = Field(default=None, description=SHARED_HELP)


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
    check_adapters: bool | None = Field(
        default=None,
        description="before a shared engine samples with an adapter, check that the adapter "
        "changes greedy answers and agrees with transformers' peft layers (default: on for "
        "every shared engine)",
    )


class MetricsSection(_Strict):
    policy: Literal["em", "model_organisms", "domain_paper"] = "em"
    bootstrap_resamples: int = Field(default=2000, ge=100)


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
    model: str | None = Field(default=None, description="one base model (one family)")
    models: list[ModelFamily] = Field(
        default_factory=list, description="several model families, each {name, model, ...}"
    )
    engine: str | None = Field(default=None, description="with model: " + engine_help())
    shared_engine: bool | None = Field(default=None, description="with model: " + SHARED_HELP)
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

    @field_validator("name")
    @classmethod
    def _plain_name(cls, name: str) -> str:
        return plain_name(name)

    @field_validator("seeds", "conditions")
    @classmethod
    def _listed_once(cls, values: list[Any]) -> list[Any]:
        return listed_once(values)

    @model_validator(mode="after")
    def _consistent(self) -> StudyConfig:
        check_config(self)  # triggers, imports, families: errors name the dotted field
        return self

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
    def _one_way_to_name_models(self) -> StudyConfig:
        if (self.model is None) == (not self.models):
            raise ValueError("name the base model with either model: or models: (a list)")
        names = [family.name for family in self.models]
        if len(set(names)) != len(names):
            raise ValueError("two model families share a name")
        return self

    def families(self) -> list[ModelFamily]:
        """The study's model families; ``model:`` alone is one family named after the study."""
        if self.models:
            return list(self.models)
        assert self.model is not None
        name = re.sub(r"[^A-Za-z0-9_-]+", "_", Path(self.model).name).strip("_") or "model"
        return [
            ModelFamily(
                name=name,
                model=self.model,
                train=self.train,
                engine=self.engine,
                shared_engine=self.shared_engine,
            )
        ]

    @property
    def prefixes_tags(self) -> bool:
        """Families of a ``models:`` list prefix their jobs' tags; ``model:`` keeps bare tags."""
        return bool(self.models)


def stored_study(config: StudyConfig) -> dict[str, Any]:
    """The study as written to disk (study.yaml, manifest, provenance): URL credentials removed."""
    from emscope.secrets import without_userinfo_in

    cleaned: dict[str, Any] = without_userinfo_in(config.model_dump(mode="json"))
    return cleaned


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
    """Read and validate a study file, before anything is spent: errors name the file and the
    dotted field; warnings (duplicate or dropped rows of imports) are issued as
    :class:`StudyWarning` (``emscope run`` prints them)."""
    import warnings

    path = Path(path)
    raw = read_study_yaml(path)
    try:
        config = StudyConfig.model_validate(raw)
        found = check_inputs(config)
    except (ValidationError, InputError) as exc:
        raise as_input_error(exc, path) from exc
    for warning in found:
        warnings.warn(f"{path}: {warning}", StudyWarning, stacklevel=2)
    return config


class StudyWarning(UserWarning):
    """Something in a study that works but is likely a mistake (printed before the run)."""
