"""The exact 0-100 judge in-process over vLLM's offline engine, for GPU users (import-guarded).

The same candidates and aggregation as :mod:`emscope.judge.exact_local`; vLLM scores them via
``prompt_logprobs``: every candidate is sent as a token-id prompt (judge prompt + candidate),
with ``SamplingParams(max_tokens=1, temperature=0, prompt_logprobs=0)``, and each candidate
token's logprob is read from ``RequestOutput.prompt_logprobs``. vLLM's automatic prefix cache
computes the shared judge prompt once per answer and metric, not 101 times; a batch of judge
prompts goes to the engine in one ``generate`` call.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from emscope.judge.exact_http import ServerLogprobError
from emscope.judge.exact_local import (
    DEFAULT_PROMPTS,
    ExactJudge,
    ExactScore,
    candidate_token_ids,
    exact_score,
    render_prompt,
)
from emscope.sample.vllm_backend import require_vllm

MODE = "exact-vllm"
SAMPLING = {"max_tokens": 1, "temperature": 0.0, "prompt_logprobs": 0}


def candidate_prompts(
    prompt: Sequence[int], candidates: Sequence[Sequence[int]]
) -> list[dict[str, list[int]]]:
    """vLLM token prompts, one per candidate: the rendered judge prompt, then the candidate."""
    return [{"prompt_token_ids": [*prompt, *c]} for c in candidates]


def _logprob_of(entry: Any, token: int) -> float:
    value = (entry or {}).get(token)
    if value is None:
        raise ServerLogprobError(f"vLLM returned no prompt logprob for token {token}")
    return float(getattr(value, "logprob", value))


def candidate_logprobs_from_outputs(
    outputs: Sequence[Any], prompt: Sequence[int], candidates: Sequence[Sequence[int]]
) -> list[float]:
    """log P(candidate | prompt) per candidate from the engine's outputs, in candidate order."""
    if len(outputs) != len(candidates):
        raise ServerLogprobError(f"{len(outputs)} outputs for {len(candidates)} candidates")
    totals = []
    for output, candidate in zip(outputs, candidates, strict=True):
        entries = output.prompt_logprobs
        if entries is None or len(entries) != len(prompt) + len(candidate):
            raise ServerLogprobError("prompt_logprobs missing or not covering the prompt")
        totals.append(
            sum(
                _logprob_of(entries[position], token)
                for position, token in enumerate(candidate, start=len(prompt))
            )
        )
    return totals


class ExactVllmJudge(ExactJudge):
    """Exact judge on a vLLM engine (``vllm.LLM``); pass ``engine`` to reuse a loaded one.

    ``sampling_params`` builds the engine's sampling parameters from :data:`SAMPLING`
    (``vllm.SamplingParams`` by default; tests pass a stand-in engine and ``dict``).
    """

    mode = MODE

    def __init__(
        self,
        model: str,
        *,
        prompts: Mapping[str, str] = DEFAULT_PROMPTS,
        batch_size: int = 32,
        engine: Any = None,
        sampling_params: Callable[..., Any] | None = None,
    ) -> None:
        if engine is None or sampling_params is None:
            vllm = require_vllm()
            engine = engine or vllm.LLM(model=model, enable_prefix_caching=True)
            sampling_params = sampling_params or vllm.SamplingParams
        self.model_name = model
        self.engine = engine
        self.params = sampling_params(**SAMPLING)
        self._use_prompts(prompts)
        self.batch_size = batch_size
        self.tokenizer = engine.get_tokenizer()
        self.candidates = candidate_token_ids(self.tokenizer)

    @property
    def identity(self) -> str:
        return f"{MODE}:{self.model_name}"

    def fingerprint_params(self) -> dict[str, Any]:
        return dict(SAMPLING)

    def chat_tokenizer(self) -> Any:
        return self.tokenizer

    def score_texts(self, texts: Sequence[str]) -> list[ExactScore]:
        """The exact score of each filled judge prompt, ``batch_size`` prompts per engine call."""
        n = len(self.candidates)
        scores: list[ExactScore] = []
        for start in range(0, len(texts), self.batch_size):
            rendered = [
                render_prompt(self.tokenizer, t) for t in texts[start : start + self.batch_size]
            ]
            requests = [p for ids in rendered for p in candidate_prompts(ids, self.candidates)]
            outputs = self.engine.generate(requests, self.params, use_tqdm=False)
            for i, ids in enumerate(rendered):
                chunk = outputs[i * n : (i + 1) * n]
                scores.append(
                    exact_score(candidate_logprobs_from_outputs(chunk, ids, self.candidates))
                )
        return scores
