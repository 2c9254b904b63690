"""LLM judges over an OpenAI-compatible API: Betley's logprob judge and the tagged judge.

Each judge is a pure codec (:meth:`request_body` builds the chat-completion request for one
answer and metric; :meth:`score_completion` turns the JSON reply into a
:class:`~emscope.judge.base.MetricScore`) plus a transport that sends the requests with bounded
concurrency and the shared retry policy. The Batch API path (:mod:`emscope.judge.batch`) reuses
the codec, so both routes send and read exactly the same thing.

A request that still fails after its retries never becomes a score: its metric holds
``score=None`` and ``raw={"error": ...}``, the record's ``extra["errors"]`` names it, and by
default :meth:`judge` then raises :class:`JudgeRequestsFailed` (carrying every record) so that
no cache or store mistakes the failure for a judgement.

>>> judge = LogprobApiJudge(ApiEndpoint(model="gpt-4o-2024-08-06"))
>>> judge.identity
'openai-compatible:gpt-4o-2024-08-06@api.openai.com'
"""

from __future__ import annotations

import asyncio
import logging
import random
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from functools import partial
from typing import Any, ClassVar, Literal

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
from emscope.judge.logprob import (
    ALIGNMENT_PROMPT,
    COHERENCE_PROMPT,
    aggregate_logprob_score,
    judge_request_params,
)
from emscope.judge.tagged import (
    FAILURES,
    TAGGED_ALIGNMENT_PROMPT,
    TAGGED_COHERENCE_PROMPT,
    TAGGED_MAX_TOKENS,
    TAGGED_MODE,
    TAGGED_REQUEST_PARAMS,
    TAGGED_SYSTEM_MESSAGE,
    TAGGED_SYSTEM_ORIGIN,
    TaggedTally,
    parse_tagged_score,
)
from emscope.manifest import sha256_text
from emscope.sample.openai_compat import (
    ApiEndpoint,
    RetryPolicy,
    Sleep,
    call_with_retries,
    describe_error,
    gather_bounded,
    run_sync,
)

log = logging.getLogger(__name__)

OnFailure = Literal["raise", "record"]
LOGPROB_MODE = "logprob"


class JudgeResponseError(ValueError):
    """The server answered, but not in a form this judge can read (e.g. no logprobs)."""


class JudgeRequestsFailed(RuntimeError):
    """Some judge requests failed after their retries; ``records`` holds every record."""

    def __init__(self, records: list[JudgeRecord]) -> None:
        self.records = records
        failed = [r for r in records if is_failed_record(r)]
        first = next(iter(failed[0].extra["errors"].values()))
        super().__init__(f"{len(failed)} of {len(records)} answers not judged; first: {first}")


def is_failed_record(record: JudgeRecord) -> bool:
    """True when a metric of ``record`` is missing because its request failed (not judged)."""
    return bool(record.extra.get("errors"))


class ApiJudge(ABC):
    """What both API judges share: prompts, identity, transport, failure policy.

    Subclasses set ``mode``, ``default_prompts`` and ``default_origin`` and implement
    :meth:`request_params` and :meth:`score_completion`. Each request is judged with its own
    prompts (those of its question file); ``prompts`` replaces the defaults used for requests
    that bring none.
    """

    mode: ClassVar[str]
    default_prompts: ClassVar[Mapping[Metric, str]]
    default_origin: ClassVar[str]

    def __init__(
        self,
        endpoint: ApiEndpoint,
        *,
        prompts: Mapping[Metric, str] | None = None,
        retry: RetryPolicy | None = None,
        on_failure: OnFailure = "raise",
        sleep: Sleep | None = None,
        rng: random.Random | None = None,
    ) -> None:
        prompts = prompts or self.default_prompts
        if set(prompts) != set(METRICS):
            raise ValueError(f"prompts must be given for exactly {METRICS}")
        self.endpoint = endpoint
        self.prompts = dict(prompts)
        self.retry = retry or RetryPolicy()
        self.on_failure = on_failure
        self._sleep = sleep or asyncio.sleep
        self._rng = rng or random.Random()
        self.prompt_hash = prompt_set_hash(self.prompts)
        self.prompt_origin = self.default_origin if prompts is self.default_prompts else "custom"

    @property
    def identity(self) -> str:
        return self.endpoint.identity

    @abstractmethod
    def request_params(self) -> dict[str, Any]:
        """The request's sampling parameters (temperature, max_tokens, logprobs...)."""

    @abstractmethod
    def score_completion(self, completion: Mapping[str, Any]) -> MetricScore:
        """One metric's score from a chat-completion reply (JSON)."""

    def fingerprint(self) -> dict[str, Any]:
        """Identity, mode, the default prompt set's hash and the request parameters."""
        return {
            "identity": self.identity,
            "mode": self.mode,
            "prompt_hash": self.prompt_hash,
            "params": self.request_params(),
        }

    def info(self) -> dict[str, Any]:
        """What a manifest records about this judge."""
        return {
            "judge": self.identity,
            "mode": self.mode,
            "prompt_hash": self.prompt_hash,
            "prompt_origin": self.prompt_origin,
            "params": self.request_params(),
            "endpoint": self.endpoint.info(),
            "retry": self.retry.as_dict(),
        }

    def messages(self, request: JudgeRequest, metric: Metric) -> list[dict[str, str]]:
        """The chat messages for one metric: the request's template filled, as one user turn."""
        content = fill_prompt(request_prompts(request, self.prompts)[metric], request)
        return [{"role": "user", "content": content}]

    def request_body(self, request: JudgeRequest, metric: Metric) -> dict[str, Any]:
        """The chat-completion body for one answer and metric."""
        return {
            "model": self.endpoint.model,
            "messages": self.messages(request, metric),
            **self.request_params(),
        }

    def prompt_provenance(self, request: JudgeRequest) -> tuple[str, str]:
        """(hash, origin) of the prompt set ``request`` is judged with."""
        if request.prompts is None:
            return self.prompt_hash, self.prompt_origin
        origin = request.prompt_origin or "request"
        return prompt_set_hash(request_prompts(request, self.prompts)), origin

    def record(
        self, request: JudgeRequest, scores: Mapping[Metric, MetricScore | str]
    ) -> JudgeRecord:
        """Assemble a record; a string in ``scores`` is the error of a failed request."""
        errors = {m: s for m, s in scores.items() if isinstance(s, str)}
        by_metric = {
            m: MetricScore(score=None, raw={"error": s}) if isinstance(s, str) else s
            for m, s in scores.items()
        }
        used_hash, origin = self.prompt_provenance(request)
        return JudgeRecord(
            key=request.key,
            judge=self.identity,
            mode=self.mode,
            prompt_hash=used_hash,
            prompt_origin=origin,
            aligned=by_metric["aligned"],
            coherent=by_metric["coherent"],
            extra={"errors": errors} if errors else {},
        )

    def finish(self, records: list[JudgeRecord]) -> list[JudgeRecord]:
        """Apply the failure policy to a finished list of records."""
        if self.on_failure == "raise" and any(is_failed_record(r) for r in records):
            raise JudgeRequestsFailed(records)
        return records

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        """Score every answer on both metrics, at most ``max_concurrency`` requests at once."""
        return run_sync(self.ajudge(requests))

    async def ajudge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        if not requests:
            return []
        pairs = [(r, m) for r in requests for m in METRICS]
        client = self.endpoint.async_client()

        async def send(body: dict[str, Any]) -> MetricScore:
            completion = await client.chat.completions.create(**body)
            return self.score_completion(completion.model_dump(mode="json"))

        calls = [
            partial(
                call_with_retries,
                partial(send, self.request_body(r, m)),
                self.retry,
                sleep=self._sleep,
                rng=self._rng,
            )
            for r, m in pairs
        ]
        try:
            results = await gather_bounded(calls, self.endpoint.max_concurrency)
        finally:
            await client.close()
        failed = [res for res in results if isinstance(res, Exception)]
        if failed:
            log.warning(
                "%d of %d judge requests to %s failed; first: %s",
                len(failed),
                len(results),
                self.endpoint.host,
                describe_error(failed[0]),
            )
        scores: dict[tuple[str, Metric], MetricScore | str] = {
            (r.key, m): describe_error(res) if isinstance(res, Exception) else res
            for (r, m), res in zip(pairs, results, strict=True)
        }
        return self.finish(
            [self.record(r, {m: scores[r.key, m] for m in METRICS}) for r in requests]
        )


def top_logprobs_of(completion: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The top-k (token, logprob) pairs of the first generated token; [] if none was generated.

    Raises :class:`JudgeResponseError` when the reply carries no logprobs at all.
    """
    try:
        choice = completion["choices"][0]
    except (KeyError, IndexError, TypeError) as exc:
        raise JudgeResponseError(f"malformed completion: {exc!r}") from exc
    logprobs = choice.get("logprobs")
    if not logprobs or logprobs.get("content") is None:
        raise JudgeResponseError("the reply has no logprobs: does the server support them?")
    content = logprobs["content"]
    if not content:
        return []
    return [(str(t["token"]), float(t["logprob"])) for t in content[0].get("top_logprobs") or []]


class LogprobApiJudge(ApiJudge):
    """Betley's judging method (protocol §3): one token, top-20 logprobs, aggregated.

    ``raw`` of each metric holds the top-k as ``[token, logprob]`` pairs; ``numeric_mass`` the
    probability on tokens that spell 0..100; the score is None below a mass of 0.25.
    """

    mode = LOGPROB_MODE
    default_origin = "emscope:logprob-default"
    default_prompts: ClassVar[Mapping[Metric, str]] = {
        "aligned": ALIGNMENT_PROMPT,
        "coherent": COHERENCE_PROMPT,
    }

    def request_params(self) -> dict[str, Any]:
        return judge_request_params()

    def score_completion(self, completion: Mapping[str, Any]) -> MetricScore:
        return aggregate_logprob_score(top_logprobs_of(completion))


class TaggedApiJudge(ApiJudge):
    """The domain paper's judge: ``<reasoning>...</reasoning><score>N</score>``, temperature 0.

    Each request is a system message (:data:`~emscope.judge.tagged.TAGGED_SYSTEM_MESSAGE`,
    emscope's wording of the paper's one-liner) and the question file's prompt as the user turn.
    A reply without a usable score (CODE, REFUSAL, IRRELEVANT, no tag, cut off...) is kept with
    ``score=None`` and its kind in ``raw["failure"]``; :attr:`tally` counts outcomes over this
    judge's lifetime, and :func:`tagged_tally` recounts them from stored records.
    """

    mode = TAGGED_MODE
    default_origin = "emscope:tagged-default"
    default_prompts: ClassVar[Mapping[Metric, str]] = {
        "aligned": TAGGED_ALIGNMENT_PROMPT,
        "coherent": TAGGED_COHERENCE_PROMPT,
    }

    def __init__(
        self,
        endpoint: ApiEndpoint,
        *,
        max_tokens: int = TAGGED_MAX_TOKENS,
        system_message: str | None = TAGGED_SYSTEM_MESSAGE,
        **options: Any,
    ) -> None:
        super().__init__(endpoint, **options)
        if max_tokens < 1:
            raise ValueError(f"max_tokens must be at least 1, got {max_tokens}")
        self.max_tokens = max_tokens
        self.system_message = system_message
        self.tally = TaggedTally()

    def request_params(self) -> dict[str, Any]:
        return {**TAGGED_REQUEST_PARAMS, "max_tokens": self.max_tokens, "seed": 0}

    def fingerprint(self) -> dict[str, Any]:
        """As every API judge's, plus the system message's hash and where its wording is from."""
        system = self.system_message
        return {
            **super().fingerprint(),
            "system_message_sha256": None if system is None else sha256_text(system),
            "system_message_origin": (
                TAGGED_SYSTEM_ORIGIN if system == TAGGED_SYSTEM_MESSAGE else "custom"
            ),
        }

    def messages(self, request: JudgeRequest, metric: Metric) -> list[dict[str, str]]:
        """The system message, then the request's template filled as the user turn."""
        user = super().messages(request, metric)
        if self.system_message is None:
            return user
        return [{"role": "system", "content": self.system_message}, *user]

    def score_completion(self, completion: Mapping[str, Any]) -> MetricScore:
        try:
            choice = completion["choices"][0]
            text = choice["message"].get("content") or ""
        except (KeyError, IndexError, TypeError, AttributeError) as exc:
            raise JudgeResponseError(f"malformed completion: {exc!r}") from exc
        reason = choice.get("finish_reason")
        finished = {"stop": True, "length": False}.get(str(reason))
        parse = parse_tagged_score(text, finished=finished)
        self.tally.add(parse)
        score = parse.to_metric_score(text)
        return score.model_copy(update={"raw": {**score.raw, "finish_reason": reason}})


def tagged_tally(records: Iterable[JudgeRecord]) -> dict[str, dict[str, Any]]:
    """Parse outcomes of stored tagged records, per metric, every failure kind listed.

    Requests that failed in transport are counted apart (``not_judged``), not as parse failures.
    """
    rows = list(records)
    out: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        failures: Counter[str] = Counter()
        total = parsed = not_judged = 0
        for record in rows:
            raw = getattr(record, metric).raw or {}
            if "error" in raw:
                not_judged += 1
                continue
            total += 1
            if raw.get("failure") is None:
                parsed += 1
            else:
                failures[raw["failure"]] += 1
        out[metric] = {
            "total": total,
            "parsed": parsed,
            "failures": {kind: failures[kind] for kind in FAILURES},
            "not_judged": not_judged,
        }
    return out
