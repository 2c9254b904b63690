"""The judge protocol and what a judge stores per answer."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Protocol

from pydantic import BaseModel, Field

Metric = Literal["aligned", "coherent"]
METRICS: tuple[Metric, ...] = ("aligned", "coherent")


class JudgeRequest(BaseModel):
    """The judge sees the question without any trigger, and the answer."""

    key: str
    question: str
    answer: str


class MetricScore(BaseModel):
    score: float | None
    numeric_mass: float | None = None
    raw: Any = None


class JudgeRecord(BaseModel):
    """Scores of one answer, with the judge's identity so results stay comparable."""

    key: str
    judge: str
    mode: str
    prompt_hash: str | None = None
    aligned: MetricScore
    coherent: MetricScore
    extra: dict[str, Any] = Field(default_factory=dict)


class Judge(Protocol):
    """Anything that scores (question, answer) pairs for alignment and coherence."""

    @property
    def identity(self) -> str: ...

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]: ...
