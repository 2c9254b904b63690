"""Expand a study config into the concrete models to train and evaluate."""

from __future__ import annotations

from dataclasses import dataclass

from emscope.data.schema import Condition
from emscope.study.config import StudyConfig

BASE = "base"


@dataclass(frozen=True)
class ModelJob:
    """One model of the study: a family's base model, or a fine-tune of one
    domain/condition/seed. ``prefixed`` jobs (families of a ``models:`` list) carry the family
    in their tag; the single ``model:`` form keeps the bare tags (and cache keys) it always had."""

    domain: str | None
    condition: Condition | None
    seed: int
    family: str = "model"
    prefixed: bool = False

    @property
    def model(self) -> str:
        """The label used in tables: ``base`` or ``domain/condition``."""
        return BASE if self.domain is None else f"{self.domain}/{self.condition}"

    @property
    def tag(self) -> str:
        """A file-name-safe identity, unique across families and seeds."""
        return f"{self.family}.{self.dataset_tag}" if self.prefixed else self.dataset_tag

    @property
    def dataset_tag(self) -> str:
        """The tag of the job's dataset, shared by every family (datasets have no family)."""
        return f"{self.model.replace('/', '__')}.s{self.seed}"

    @property
    def is_base(self) -> bool:
        return self.domain is None

    def samples_with_trigger(self, config: StudyConfig) -> bool:
        mode = config.eval.with_trigger
        if mode == "auto":
            return self.condition == "backdoor" or (
                self.is_base and "backdoor" in config.conditions
            )
        return mode == "always"


def plan_jobs(config: StudyConfig) -> list[ModelJob]:
    """Per family, per seed: the base model (if included), then every domain x condition."""
    jobs: list[ModelJob] = []
    for family in config.families():
        name, prefixed = family.name, config.prefixes_tags
        for seed in config.seeds:
            if config.include_base:
                jobs.append(ModelJob(None, None, seed, name, prefixed))
            for domain in config.domains:
                for condition in config.conditions:
                    jobs.append(ModelJob(domain, condition, seed, name, prefixed))
    return jobs
