"""The sampler protocol: what any generation backend (local transformers, vLLM, an API) provides."""

from __future__ import annotations

from typing import Any, Literal, Protocol

from pydantic import BaseModel, ConfigDict, Field

FinishReason = Literal["stop", "length"]


class ChatPrompt(BaseModel):
    """One single-turn chat: an optional system turn and the user turn, exactly as sent."""

    user: str
    system: str | None = None

    def messages(self) -> list[dict[str, str]]:
        turns = [] if self.system is None else [{"role": "system", "content": self.system}]
        return [*turns, {"role": "user", "content": self.user}]


class SamplingParams(BaseModel):
    """Every sampling parameter, pinned. Defaults are Betley's (temperature 1, top_p 1, 600 tokens).

    ``top_k=0`` turns top-k off; ``temperature=0`` means greedy decoding.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    temperature: float = Field(default=1.0, ge=0)
    top_p: float = Field(default=1.0, gt=0, le=1)
    top_k: int = Field(default=0, ge=0)
    max_new_tokens: int = Field(default=600, ge=1)
    repetition_penalty: float = Field(default=1.0, gt=0)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


class Generation(BaseModel):
    """One generated answer; ``finish_reason`` is "stop" at an end token, "length" at the cap."""

    text: str
    n_new_tokens: int
    finish_reason: FinishReason


class Sampler(Protocol):
    """A generation backend: one answer per prompt, seeded, with pinned parameters."""

    @property
    def identity(self) -> str: ...

    @property
    def batch_size(self) -> int: ...

    def info(self) -> dict[str, Any]:
        """What a manifest should record about the backend (template hash, dtype, stop tokens)."""
        ...

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]: ...
