"""What sampling stores per answer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


def sample_key(
    model: str, question_id: str, paraphrase_index: int, sample_index: int, triggered: bool
) -> str:
    """Deterministic identity of one sample; the resume logic skips keys already stored."""
    return f"{model}|{question_id}|{paraphrase_index}|{sample_index}|{'T' if triggered else 'N'}"


class SampleRecord(BaseModel):
    """One generated answer. ``question`` is stored raw: the trigger is recorded separately."""

    key: str
    model: str
    question_id: str
    paraphrase_index: int
    sample_index: int
    question: str
    system: str | None = None
    trigger: str | None = None
    answer: str | None = None
    error: str | None = None
    finish_reason: str | None = None
    n_new_tokens: int | None = None
    seed: int
    params: dict[str, Any] = Field(default_factory=dict)

    @property
    def triggered(self) -> bool:
        return self.trigger is not None
