"""Sample answers over an OpenAI-compatible HTTP API: OpenAI, vLLM, SGLang or llama.cpp.

Every sampling parameter is pinned in each request (temperature, top_p, max_tokens, a per-sample
seed; for local servers also top_k, min_p and the repetition penalty, whose server defaults are
otherwise applied silently). Requests run concurrently, at most ``max_concurrency`` at once, each
with a timeout and the retry policy of :mod:`emscope.sample.openai_compat`.

>>> endpoint = ApiEndpoint(model="smollm2", base_url="http://127.0.0.1:8080/v1")
>>> sampler = HttpSampler(endpoint)
>>> sampler.generate([ChatPrompt(user="Hi!")], SamplingParams(max_new_tokens=16), seeds=[0])
... # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial
from typing import Any

from emscope.errors import EmscopeError
from emscope.sample.base import ChatPrompt, FinishReason, Generation, SamplingParams
from emscope.sample.openai_compat import (
    ApiEndpoint,
    RetryPolicy,
    Sleep,
    call_with_retries,
    describe_error,
    gather_bounded,
    run_sync,
)

__all__ = ["GenerationFailed", "HttpSampler", "RequestFailure", "request_body"]

log = logging.getLogger(__name__)
_FINISH_REASONS: dict[str, FinishReason] = {"stop": "stop", "length": "length", "eos": "stop"}


@dataclass(frozen=True)
class RequestFailure:
    """A request that still failed after every retry: never an answer."""

    error: str


class GenerationFailed(EmscopeError, RuntimeError):
    """Raised by :meth:`HttpSampler.generate` when some requests failed after their retries.

    ``outcomes`` holds every prompt's result in order, so a caller can keep the answers that
    did arrive; ``sample_answers`` records the whole batch as failed rows and retries them.
    """

    hint = "answers that arrived are kept: rerun to retry the failed ones; check the server"

    def __init__(self, outcomes: list[Generation | RequestFailure]) -> None:
        self.outcomes = outcomes
        failures = [o for o in outcomes if isinstance(o, RequestFailure)]
        super().__init__(
            f"{len(failures)} of {len(outcomes)} requests failed; first: {failures[0].error}"
        )


def request_body(
    model: str, prompt: ChatPrompt, params: SamplingParams, seed: int, *, pin_local: bool
) -> dict[str, Any]:
    """The chat-completion request for one sample, every parameter explicit.

    ``pin_local`` adds the non-OpenAI fields local servers understand (``top_k``, ``min_p``,
    ``repetition_penalty`` for vLLM/SGLang, ``repeat_penalty`` for llama.cpp).
    """
    body: dict[str, Any] = {
        "model": model,
        "messages": prompt.messages(),
        "temperature": params.temperature,
        "top_p": params.top_p,
        "max_tokens": params.max_new_tokens,
        "seed": seed,
        "n": 1,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
    }
    if pin_local:
        body.update(
            top_k=params.top_k,
            min_p=0.0,
            repetition_penalty=params.repetition_penalty,
            repeat_penalty=params.repetition_penalty,
        )
    elif params.top_k != 0 or params.repetition_penalty != 1.0:
        raise ValueError(
            "the OpenAI API has no top_k or repetition_penalty; use top_k=0 and "
            "repetition_penalty=1.0, or a local server"
        )
    return body


def to_generation(completion: dict[str, Any]) -> Generation | RequestFailure:
    """Read one chat completion (as JSON); a filtered or malformed reply is a failure."""
    try:
        choice = completion["choices"][0]
        reason = _FINISH_REASONS.get(str(choice.get("finish_reason")))
        text = choice["message"].get("content")
    except (KeyError, IndexError, TypeError, AttributeError) as exc:
        return RequestFailure(f"malformed completion: {exc!r}")
    if reason is None or text is None:
        return RequestFailure(f"no answer: finish_reason={choice.get('finish_reason')!r}")
    usage = completion.get("usage") or {}
    n_tokens = int(usage.get("completion_tokens") or 0)
    return Generation(text=text, n_new_tokens=n_tokens, finish_reason=reason)


class HttpSampler:
    """A :class:`~emscope.sample.base.Sampler` over an OpenAI-compatible chat endpoint."""

    def __init__(
        self,
        endpoint: ApiEndpoint,
        *,
        retry: RetryPolicy | None = None,
        batch_size: int | None = None,
        pin_local: bool | None = None,
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        self.endpoint = endpoint
        self.retry = retry or RetryPolicy()
        self._batch_size = batch_size or 4 * endpoint.max_concurrency
        self.pin_local = (not endpoint.is_openai) if pin_local is None else pin_local
        self._sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()

    @property
    def identity(self) -> str:
        return self.endpoint.identity

    @property
    def batch_size(self) -> int:
        return self._batch_size

    def info(self) -> dict[str, Any]:
        return {
            "backend": "openai-compatible",
            **self.endpoint.info(),
            "batch_size": self.batch_size,
            "pin_local": self.pin_local,
            "retry": self.retry.as_dict(),
        }

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        """One answer per prompt; raises :class:`GenerationFailed` if any request failed."""
        outcomes = self.generate_outcomes(prompts, params, seeds)
        if any(isinstance(o, RequestFailure) for o in outcomes):
            raise GenerationFailed(outcomes)
        return [o for o in outcomes if isinstance(o, Generation)]

    def generate_outcomes(
        self, prompts: Sequence[ChatPrompt], params: SamplingParams, seeds: Sequence[int]
    ) -> list[Generation | RequestFailure]:
        """Each prompt's answer, or its failure after the retries."""
        if len(seeds) != len(prompts):
            raise ValueError(f"{len(prompts)} prompts but {len(seeds)} seeds")
        bodies = [
            request_body(self.endpoint.model, p, params, s, pin_local=self.pin_local)
            for p, s in zip(prompts, seeds, strict=True)
        ]
        return run_sync(self._send_all(bodies))

    async def _send_all(self, bodies: list[dict[str, Any]]) -> list[Generation | RequestFailure]:
        client = self.endpoint.async_client()
        extras = ("top_k", "min_p", "repetition_penalty", "repeat_penalty")

        async def send(body: dict[str, Any]) -> dict[str, Any]:
            standard = {k: v for k, v in body.items() if k not in extras}
            extra_body = {k: body[k] for k in extras if k in body} or None
            completion = await client.chat.completions.create(**standard, extra_body=extra_body)
            return completion.model_dump(mode="json")

        calls = [
            partial(
                call_with_retries, partial(send, b), self.retry, sleep=self._sleep, rng=self._rng
            )
            for b in bodies
        ]
        try:
            results = await gather_bounded(calls, self.endpoint.max_concurrency)
        finally:
            await client.close()
        outcomes: list[Generation | RequestFailure] = []
        for result in results:
            if isinstance(result, Exception):
                log.warning("request to %s failed: %s", self.endpoint.host, describe_error(result))
                outcomes.append(RequestFailure(describe_error(result)))
            else:
                outcomes.append(to_generation(result))
        return outcomes
