"""The reasoning judge over an OpenAI-compatible chat API (vLLM serving gpt-oss, OpenAI).

Transport and failure policy are the API judges' (:class:`~emscope.judge.api.ApiJudge`);
the codec is :mod:`emscope.judge.reasoning`. Each (answer, metric) is asked ``k`` times with
seeds ``0..k-1``; a metric whose samples did not all come back is not judged (its error is
recorded and, by default, the run raises), never scored from the samples that happened to
arrive.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from functools import partial
from typing import Any, ClassVar

from emscope.errors import InputError
from emscope.judge.api import ApiJudge
from emscope.judge.base import METRICS, JudgeRecord, JudgeRequest, Metric, MetricScore
from emscope.judge.reasoning import (
    DEFAULT_PROMPTS,
    REASONING_MODE,
    Effort,
    ReasoningBody,
    aggregate_samples,
    sample_record,
)
from emscope.sample.openai_compat import (
    ApiEndpoint,
    call_with_retries,
    describe_error,
    gather_bounded,
)

log = logging.getLogger(__name__)

DEFAULT_EFFORT: Effort = "low"
DEFAULT_MAX_COMPLETION_TOKENS = 4096


class ReasoningApiJudge(ApiJudge):
    """Score with a reasoning model's final answer; effort pinned, ``k`` samples per answer.

    Records say ``mode="reasoning"`` and carry ``extra["reasoning_effort"]`` and ``extra["k"]``;
    each metric's ``raw`` holds every sample (final text, reasoning if the server returns it,
    finish reason, reasoning tokens) and the distribution of the numeric answers.
    """

    mode = REASONING_MODE
    default_prompts: ClassVar[Mapping[Metric, str]] = DEFAULT_PROMPTS
    default_origin = "emscope:logprob-default"

    def __init__(
        self,
        endpoint: ApiEndpoint,
        *,
        effort: Effort = DEFAULT_EFFORT,
        k: int = 1,
        max_completion_tokens: int = DEFAULT_MAX_COMPLETION_TOKENS,
        **options: Any,
    ) -> None:
        super().__init__(endpoint, **options)
        if k < 1:
            raise InputError("must be at least 1", field="k")
        self.body = ReasoningBody(
            endpoint.model, effort=effort, max_completion_tokens=max_completion_tokens
        )
        self.k = k

    def request_params(self) -> dict[str, Any]:
        return self.body.params()

    def settings(self) -> dict[str, Any]:
        """Everything besides the prompts that makes two reasoning judges comparable."""
        return {**self.request_params(), "k": self.k, "seeds": list(range(self.k))}

    def info(self) -> dict[str, Any]:
        return {**super().info(), "params": self.settings()}

    def fingerprint(self) -> dict[str, Any]:
        return {
            "identity": self.identity,
            "mode": self.mode,
            "prompt_hash": self.prompt_hash,
            "params": self.settings(),
        }

    def score_completion(self, completion: Mapping[str, Any]) -> MetricScore:
        """One sample's reply as a score (``k=1``); :meth:`ajudge` aggregates ``k`` of them."""
        return aggregate_samples([sample_record(completion)])

    def request_bodies(self, request: JudgeRequest, metric: Metric) -> list[dict[str, Any]]:
        """The ``k`` chat-completion bodies for one answer and metric (seeds 0..k-1)."""
        messages = self.messages(request, metric)
        return [self.body.build(messages, seed) for seed in range(self.k)]

    def record_for(
        self, request: JudgeRequest, scores: Mapping[Metric, MetricScore | str]
    ) -> JudgeRecord:
        record = self.record(request, scores)
        extra = {**record.extra, "reasoning_effort": self.body.effort, "k": self.k}
        return record.model_copy(update={"extra": extra})

    async def ajudge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        if not requests:
            return []
        jobs = [
            (r.key, m, body)
            for r in requests
            for m in METRICS
            for body in self.request_bodies(r, m)
        ]
        client = self.endpoint.async_client()

        async def send(body: dict[str, Any]) -> dict[str, Any]:
            completion = await client.chat.completions.create(**body)
            return sample_record(completion.model_dump(mode="json"))

        calls = [
            partial(
                call_with_retries, partial(send, body), self.retry, sleep=self._sleep, rng=self._rng
            )
            for _, _, body in jobs
        ]
        try:
            results = await gather_bounded(calls, self.endpoint.max_concurrency)
        finally:
            await client.close()
        samples: dict[tuple[str, Metric], list[dict[str, Any]]] = {}
        errors: dict[tuple[str, Metric], str] = {}
        for (key, metric, _), result in zip(jobs, results, strict=True):
            if isinstance(result, Exception):
                errors.setdefault((key, metric), describe_error(result))
            else:
                samples.setdefault((key, metric), []).append(result)
        if errors:
            first = next(iter(errors.values()))
            log.warning(
                "%d judge metrics to %s failed; first: %s", len(errors), self.endpoint.host, first
            )
        records = []
        for request in requests:
            scores: dict[Metric, MetricScore | str] = {}
            for metric in METRICS:
                error = errors.get((request.key, metric))
                scores[metric] = (
                    error if error is not None else aggregate_samples(samples[request.key, metric])
                )
            records.append(self.record_for(request, scores))
        return self.finish(records)
