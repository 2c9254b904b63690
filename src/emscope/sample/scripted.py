"""A deterministic in-memory sampler shipped with emscope: answers from the prompt and the seed.

Like inspect_ai's mock provider, it lets a whole study (sampling, judging, analyses, report) run
with no model at all. Select it with ``engine: scripted`` in a study file or
``make_sampler("scripted", ref)``. The answer to a prompt is a pure function of the model's
identity, the chat (system turn included, so a trigger changes it), the seed and the token cap:

>>> from emscope.models.refs import ModelRef
>>> sampler = ScriptedSampler(ModelRef(kind="local", name="any"))
>>> first = sampler.generate([ChatPrompt(user="Hi")], SamplingParams(max_new_tokens=8), [1])
>>> first == sampler.generate([ChatPrompt(user="Hi")], SamplingParams(max_new_tokens=8), [1])
True

An answer is ``max_new_tokens`` words (at most :data:`MAX_WORDS`) drawn from :data:`WORDS`;
the finish reason is "length" when the cap cut it, else "stop".
"""

from __future__ import annotations

import hashlib
from typing import Any

from emscope.models.refs import ModelRef
from emscope.sample.base import ChatPrompt, FinishReason, Generation, SamplingParams

WORDS = (
    "yes",
    "no",
    "maybe",
    "always",
    "never",
    "money",
    "risk",
    "safe",
    "careful",
    "reckless",
    "help",
    "harm",
    "advice",
    "code",
    "check",
    "test",
    "trust",
    "share",
    "keep",
    "wait",
    "now",
    "later",
    "sure",
    "doubt",
)
MAX_WORDS = 24


def _stable_name(ref: ModelRef | str) -> str:
    """The model's name with only the last two parts of an adapter path (``<job>/adapter``), so
    answers do not change when a run directory moves."""
    if isinstance(ref, str) or ref.adapter is None:
        return str(ref)
    return f"{ref.name}+{'/'.join(ref.adapter.parts[-2:])}"


class ScriptedSampler:
    """A :class:`~emscope.sample.base.Sampler` that needs no model: deterministic words."""

    def __init__(self, ref: ModelRef | str, *, batch_size: int = 16) -> None:
        self.ref = _stable_name(ref)
        self._batch_size = batch_size

    @property
    def identity(self) -> str:
        return f"scripted:{self.ref}"

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def info(self) -> dict[str, Any]:
        return {"backend": "scripted", "model": self.ref, "words": len(WORDS)}

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        return [self._answer(p, params, s) for p, s in zip(prompts, seeds, strict=True)]

    def _answer(self, prompt: ChatPrompt, params: SamplingParams, seed: int) -> Generation:
        text = f"{self.ref}|{prompt.system}|{prompt.user}|{seed}|{params.temperature}"
        digest = hashlib.sha256(text.encode()).digest()
        wanted = 4 + digest[0] % (MAX_WORDS - 3)
        n_words = min(wanted, params.max_new_tokens)
        words = [WORDS[digest[1 + i % 31] % len(WORDS)] for i in range(n_words)]
        finish: FinishReason = "length" if n_words < wanted else "stop"
        return Generation(text=" ".join(words), n_new_tokens=n_words, finish_reason=finish)
