"""Expand a study config into the concrete models to train and evaluate."""

from __future__ import annotations

from dataclasses import dataclass

from emscope.data.schema import Condition
from emscope.study.config import StudyConfig

BASE = "base"


@dataclass(frozen=True)
class ModelJob:
    """One model of the study: the base model, or a fine-tune of one domain/condition/seed."""

    domain: str | None
    condition: Condition | None
    seed: int

    @property
    def model(self) -> str:
        """The label used in tables: ``base`` or ``domain/condition``."""
        return BASE if self.domain is None else f"{self.domain}/{self.condition}"

    @property
    def tag(self) -> str:
        """A file-name-safe identity, unique across seeds."""
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
    jobs: list[ModelJob] = []
    for seed in config.seeds:
        if config.include_base:
            jobs.append(ModelJob(domain=None, condition=None, seed=seed))
        for domain in config.domains:
            for condition in config.conditions:
                jobs.append(ModelJob(domain=domain, condition=condition, seed=seed))
    return jobs
