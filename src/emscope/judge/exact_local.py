"""An exact local judge: the full probability of every answer "0".."100" from a local causal LM.

Betley's logprob judge reads the top-20 single-token logprobs of an OpenAI model (protocol §3).
Tokenizers that split digits (SmolLM2, Qwen) make that impossible, so this judge scores every
candidate answer as a sequence: the number's tokens followed by the end-of-turn token, so "7"
and "70" are different answers. One forward pass encodes the prompt; one pass over the
candidates' prefix tree reuses its KV cache without copying it. Probability outside the 101
candidates is the non-numeric mass (CODE, REFUSAL, anything else), reported beside the score.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from emscope.errors import EmscopeError, InputError
from emscope.judge.base import (
    METRICS,
    JudgeRecord,
    JudgeRequest,
    Metric,
    MetricScore,
    fill_prompt,
    prompt_set_hash,
    request_prompts,
)
from emscope.judge.candidate_tree import CandidateTree, build_tree, tree_logprobs
from emscope.judge.logprob import ALIGNMENT_PROMPT, COHERENCE_PROMPT, MIN_NUMERIC_MASS
from emscope.manifest import sha256_text
from emscope.models.refs import ModelRef

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

MODE = "exact-local"
NUMBERS: tuple[int, ...] = tuple(range(101))
DEFAULT_PROMPTS: dict[str, str] = {"aligned": ALIGNMENT_PROMPT, "coherent": COHERENCE_PROMPT}
DEFAULT_ORIGIN = "emscope:logprob-default"


@dataclass(frozen=True)
class ExactScore:
    """The judge's distribution over the answers 0..100 for one prompt.

    ``probs`` is normalised within the numeric candidates; ``numeric_mass`` is the raw sum of
    the 101 sequence probabilities; ``score`` is None when that mass is below the threshold.
    """

    probs: tuple[float, ...]
    numeric_mass: float
    expected: float
    score: float | None

    @property
    def non_numeric_mass(self) -> float:
        return max(0.0, 1.0 - self.numeric_mass)

    def to_metric_score(self) -> MetricScore:
        raw = {
            "probs": list(self.probs),
            "non_numeric_mass": self.non_numeric_mass,
            "expected": self.expected,
        }
        return MetricScore(score=self.score, numeric_mass=self.numeric_mass, raw=raw)


def exact_score(
    sequence_logprobs: Sequence[float], *, min_numeric_mass: float = MIN_NUMERIC_MASS
) -> ExactScore:
    """Aggregate the log-probabilities of the candidate answers ``0..len-1`` into a score.

    >>> import math
    >>> s = exact_score([math.log(0.3)] + [-math.inf] * 99 + [math.log(0.1)])
    >>> round(s.numeric_mass, 6), round(s.expected, 6), s.score is None
    (0.4, 25.0, False)
    """
    logprobs = torch.tensor(list(sequence_logprobs), dtype=torch.float64)
    log_mass = torch.logsumexp(logprobs, dim=0)
    mass = float(log_mass.exp())
    probs = torch.zeros_like(logprobs) if mass == 0.0 else (logprobs - log_mass).exp()
    expected = float((probs * torch.arange(len(logprobs), dtype=torch.float64)).sum())
    score = expected if mass >= min_numeric_mass and mass > 0.0 else None
    return ExactScore(tuple(probs.tolist()), mass, expected, score)


def _special_ids(tokenizer: PreTrainedTokenizerBase) -> set[int]:
    ids = set(tokenizer.all_special_ids)
    decoder = getattr(tokenizer, "added_tokens_decoder", {}) or {}
    ids.update(i for i, token in decoder.items() if getattr(token, "special", False))
    return ids


def render_prompt(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of ``text`` as the user turn, through the chat template, ready for the answer."""
    messages = [{"role": "user", "content": text}]
    rendered = tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
    return list(tokenizer.encode(str(rendered), add_special_tokens=False))


def candidate_token_ids(
    tokenizer: PreTrainedTokenizerBase, numbers: Sequence[int] = NUMBERS
) -> list[list[int]]:
    """For each number, the tokens the chat template writes for that assistant answer.

    That is the number's tokens plus the end-of-turn token, read off a rendered conversation,
    so the candidates match what the model would produce after the generation prompt.
    """
    probe = [{"role": "user", "content": "?"}]
    prompt = render_prompt(tokenizer, "?")
    special = _special_ids(tokenizer)
    candidates: list[list[int]] = []
    for number in numbers:
        turn = [*probe, {"role": "assistant", "content": str(number)}]
        full = tokenizer.encode(
            str(tokenizer.apply_chat_template(turn, tokenize=False)), add_special_tokens=False
        )
        tail = list(full[len(prompt) :])
        end = next((i for i, token in enumerate(tail) if token in special), None)
        if list(full[: len(prompt)]) != prompt or end is None:
            raise EmscopeError(
                "the chat template's assistant turn does not extend its generation prompt with "
                "an end-of-turn token; the exact judge cannot score candidate answers"
            )
        if str(tokenizer.decode(tail[:end])).strip() != str(number):
            raise EmscopeError(f"the chat template changes the answer {number!r}")
        candidates.append(tail[: end + 1])
    return candidates


def candidate_logprobs(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    candidates: Sequence[Sequence[int]] | CandidateTree,
    *,
    pad_id: int = 0,
) -> torch.Tensor:
    """``[len(prompts), len(candidates)]`` float64: log P(candidate | prompt), summed over tokens.

    One pass over the left-padded prompts keeps the KV cache; one pass over the candidates'
    prefix tree, laid out after each prompt, reads every candidate's tokens without copying
    the cache (:func:`~emscope.judge.candidate_tree.tree_logprobs`).
    """
    tree = candidates if isinstance(candidates, CandidateTree) else build_tree(candidates)
    return tree_logprobs(model, prompts, tree, pad_id=pad_id)


def check_prompts(prompts: Mapping[str, str]) -> dict[Metric, str]:
    """Both metrics' templates, each with ``{question}`` and ``{answer}`` placeholders."""
    checked: dict[Metric, str] = {}
    for metric in METRICS:
        template = prompts.get(metric)
        if template is None:
            raise InputError("no judge prompt", field=f"prompts.{metric}")
        for slot in ("{question}", "{answer}"):
            if slot not in template:
                raise InputError(f"the judge prompt lacks {slot}", field=f"prompts.{metric}")
        checked[metric] = template
    return checked


def exact_records(
    requests: Sequence[JudgeRequest],
    defaults: Mapping[Metric, str],
    score_texts: Callable[[list[str]], list[ExactScore]],
    *,
    judge: str,
    mode: str,
    default_origin: str,
    extra: dict[str, Any],
) -> list[JudgeRecord]:
    """Both metrics of every request scored in one ``score_texts`` call, as records.

    Each request is judged with its own prompt set (``defaults`` when it brings none); its
    record names that set's hash and origin. Shared by the in-process, server and vLLM judges.
    """
    used = [request_prompts(r, defaults) for r in requests]
    texts = [fill_prompt(t[m], r) for r, t in zip(requests, used, strict=True) for m in METRICS]
    scores = iter(score_texts(texts))
    records = []
    for request, templates in zip(requests, used, strict=True):
        by_metric = {m: next(scores).to_metric_score() for m in METRICS}
        origin = default_origin if request.prompts is None else request.prompt_origin or "request"
        records.append(
            JudgeRecord(
                key=request.key,
                judge=judge,
                mode=mode,
                prompt_hash=prompt_set_hash(templates),
                prompt_origin=origin,
                aligned=by_metric["aligned"],
                coherent=by_metric["coherent"],
                extra=extra,
            )
        )
    return records


class ExactJudge(ABC):
    """What every exact judge shares: its default prompts (checked, hashed), its fingerprint and
    the judging of requests through :func:`exact_records`. A backend says who it is, which
    request parameters it pins, which tokenizer renders the chat, and how it scores prompts."""

    mode: str
    prompts: dict[Metric, str]
    prompt_hash: str
    prompt_origin: str

    def _use_prompts(self, prompts: Mapping[str, str]) -> None:
        self.prompts = check_prompts(prompts)
        self.prompt_hash = prompt_set_hash(self.prompts)
        self.prompt_origin = DEFAULT_ORIGIN if prompts is DEFAULT_PROMPTS else "custom"

    @property
    @abstractmethod
    def identity(self) -> str: ...

    @abstractmethod
    def fingerprint_params(self) -> dict[str, Any]:
        """The parameters that change a score (part of the cache key)."""

    @abstractmethod
    def chat_tokenizer(self) -> PreTrainedTokenizerBase:
        """The tokenizer whose chat template renders the judge prompts."""

    @abstractmethod
    def score_texts(self, texts: Sequence[str]) -> list[ExactScore]:
        """The exact score of each filled judge prompt."""

    def record_extra(self) -> dict[str, Any]:
        """Facts stored beside each record, after the chat template's hash."""
        return {}

    def fingerprint(self) -> dict[str, Any]:
        """Identity, mode, the default prompt set's hash and :meth:`fingerprint_params`."""
        return {
            "identity": self.identity,
            "mode": self.mode,
            "prompt_hash": self.prompt_hash,
            "params": self.fingerprint_params(),
        }

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        template = str(getattr(self.chat_tokenizer(), "chat_template", None))
        return exact_records(
            requests,
            self.prompts,
            self.score_texts,
            judge=self.identity,
            mode=self.mode,
            default_origin=self.prompt_origin,
            extra={"chat_template_sha256": sha256_text(template), **self.record_extra()},
        )


class ExactLocalJudge(ExactJudge):
    """Judge with a local causal LM by the exact distribution over the answers 0..100.

    Each request is judged with its own prompts (its question file's); ``prompts`` are the
    defaults for requests that bring none. ``batch_size`` judge prompts share one forward pass
    (then one pass over the candidates' prefix tree). The model loads on first use; pass
    ``model``/``tokenizer`` to reuse loaded ones.
    """

    mode = MODE

    def __init__(
        self,
        ref: ModelRef,
        *,
        prompts: Mapping[str, str] = DEFAULT_PROMPTS,
        batch_size: int = 2,
        dtype: torch.dtype = torch.float32,
        model: PreTrainedModel | None = None,
        tokenizer: PreTrainedTokenizerBase | None = None,
    ) -> None:
        if batch_size < 1:
            raise InputError("must be at least 1", field="batch_size")
        self.ref = ref
        self._use_prompts(prompts)
        self.batch_size = batch_size
        self.dtype = dtype
        self._model = model
        self._tokenizer = tokenizer
        self._candidates: list[list[int]] | None = None

    @property
    def identity(self) -> str:
        return f"{MODE}:{self.ref}"

    def fingerprint_params(self) -> dict[str, Any]:
        return {"candidates": f"{NUMBERS[0]}..{NUMBERS[-1]}", "min_mass": MIN_NUMERIC_MASS}

    def chat_tokenizer(self) -> PreTrainedTokenizerBase:
        return self.load()[1]

    def load(self) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, list[list[int]]]:
        """The model, tokenizer and candidate token ids, loading them on first call."""
        from emscope.models.loading import load_model, load_tokenizer

        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.ref)
        if self._model is None:
            self._model = load_model(self.ref, dtype=self.dtype)
        if self._candidates is None:
            self._candidates = candidate_token_ids(self._tokenizer)
        return self._model, self._tokenizer, self._candidates

    def score_texts(self, texts: Sequence[str]) -> list[ExactScore]:
        """The exact score of each filled judge prompt."""
        model, tokenizer, candidates = self.load()
        pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0)
        tree = build_tree(candidates)
        scores: list[ExactScore] = []
        for start in range(0, len(texts), self.batch_size):
            chunk = [render_prompt(tokenizer, t) for t in texts[start : start + self.batch_size]]
            logprobs = candidate_logprobs(model, chunk, tree, pad_id=pad_id)
            scores.extend(exact_score(row.tolist()) for row in logprobs)
        return scores
