"""Judge through the OpenAI Batch API (half price, up to 24 hours), resumably.

:class:`BatchJudge` wraps an API judge (:class:`~emscope.judge.api.LogprobApiJudge` or
:class:`~emscope.judge.api.TaggedApiJudge`) and sends exactly its requests as one batch: a JSONL
file of ``{"custom_id": "<sample key>::<metric>", "method": "POST", "url":
"/v1/chat/completions", "body": ...}`` lines is uploaded (purpose ``batch``), the batch is
created and polled with growing intervals, and both the output file and the error file are
downloaded and joined by ``custom_id``.

Every step is written to ``<state_dir>/<hash of the request file>/state.json`` before the next
one starts, so a restarted process re-attaches to the batch it already paid for instead of
submitting again (a batch created just before a crash is found again by its metadata). Requests
that errored or expired are resubmitted, on their own, by the next call: at most one new batch
per call.

>>> judge = BatchJudge(LogprobApiJudge(ApiEndpoint(model="gpt-4o-mini")), "runs/batches")
... # doctest: +SKIP
>>> records = judge.judge(requests)  # blocks until the batch ends  # doctest: +SKIP
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

from pydantic import BaseModel, Field

from emscope.errors import EmscopeError
from emscope.judge.api import ApiJudge
from emscope.judge.base import METRICS, JudgeRecord, JudgeRequest, Metric, MetricScore
from emscope.manifest import sha256_text
from emscope.sample.openai_compat import Sleep, call_with_retries, describe_error

if TYPE_CHECKING:
    from openai import AsyncOpenAI

log = logging.getLogger(__name__)

CHAT_URL: Final[Literal["/v1/chat/completions"]] = "/v1/chat/completions"
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
METADATA_KEY = "emscope_requests"
_SEPARATOR = "::"


class BatchFailed(EmscopeError):
    """The batch as a whole failed (usually validation of the request file)."""


class BatchStillRunning(EmscopeError):
    """``max_wait_s`` passed before the batch ended; call again to re-attach."""


class BatchAttempt(BaseModel):
    """One submitted batch and what is known about it."""

    index: int
    n_requests: int
    input_file_id: str | None = None
    batch_id: str | None = None
    status: str | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    downloaded: bool = False
    errors: list[dict[str, Any]] = Field(default_factory=list)
    updated_at: float | None = None


class BatchState(BaseModel):
    """Everything needed to re-attach: the request file's hash and every attempt."""

    requests_sha256: str
    judge: str
    mode: str
    n_requests: int
    attempts: list[BatchAttempt] = Field(default_factory=list)


def custom_id(key: str, metric: Metric) -> str:
    return f"{key}{_SEPARATOR}{metric}"


def split_custom_id(value: str) -> tuple[str, str]:
    key, _, metric = value.rpartition(_SEPARATOR)
    return key, metric


def batch_lines(judge: ApiJudge, requests: Sequence[JudgeRequest]) -> list[dict[str, Any]]:
    """One Batch API request line per (answer, metric), bodies exactly as the judge sends them."""
    keys = [r.key for r in requests]
    if len(set(keys)) != len(keys):
        raise ValueError("judge requests must have distinct keys")
    return [
        {
            "custom_id": custom_id(r.key, m),
            "method": "POST",
            "url": CHAT_URL,
            "body": judge.request_body(r, m),
        }
        for r in requests
        for m in METRICS
    ]


def result_of_line(line: Mapping[str, Any]) -> tuple[dict[str, Any] | None, str | None]:
    """(completion body, None) for a successful output line; (None, error text) otherwise."""
    response = line.get("response") or {}
    if line.get("error"):
        error = line["error"]
        return None, f"batch error {error.get('code')}: {error.get('message')}"
    status = response.get("status_code")
    body = response.get("body")
    if status == 200 and isinstance(body, dict):
        return body, None
    message = (body or {}).get("error", {}).get("message") if isinstance(body, dict) else body
    return None, f"batch request failed (HTTP {status}): {message}"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


class BatchJudge:
    """The Judge protocol over the Batch API; :meth:`judge` blocks until the batch ends.

    Identity, mode and prompt hash are the inner judge's, so batch and direct scores are
    interchangeable (and share a cache). ``poll_*`` set the polling backoff in seconds;
    ``max_wait_s`` bounds one call (then :class:`BatchStillRunning`; the state stays on disk).
    """

    def __init__(
        self,
        inner: ApiJudge,
        state_dir: str | Path,
        *,
        poll_initial_s: float = 30.0,
        poll_max_s: float = 600.0,
        poll_factor: float = 1.5,
        max_wait_s: float | None = None,
        sleep: Sleep | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner = inner
        self.state_dir = Path(state_dir)
        self.poll_initial_s = poll_initial_s
        self.poll_max_s = poll_max_s
        self.poll_factor = poll_factor
        self.max_wait_s = max_wait_s
        self._sleep = sleep or asyncio.sleep
        self._clock = clock

    @property
    def identity(self) -> str:
        return self.inner.identity

    @property
    def mode(self) -> str:
        return self.inner.mode

    @property
    def prompt_hash(self) -> str:
        return self.inner.prompt_hash

    def fingerprint(self) -> dict[str, Any]:
        """The inner judge's: batch and direct scores are interchangeable."""
        return self.inner.fingerprint()

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        from emscope.sample.openai_compat import run_sync

        return run_sync(self.ajudge(requests))

    async def ajudge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        if not requests:
            return []
        lines = batch_lines(self.inner, requests)
        text = "".join(json.dumps(line, sort_keys=True) + "\n" for line in lines)
        digest = sha256_text(text)
        run = _BatchRun(self, self.state_dir / digest[:16], digest, lines)
        client = self.inner.endpoint.async_client()
        try:
            results = await run.results(client)
        finally:
            await client.close()
        return self._records(requests, results, run.state)

    def _records(
        self,
        requests: Sequence[JudgeRequest],
        results: Mapping[str, tuple[dict[str, Any] | None, str | None]],
        state: BatchState,
    ) -> list[JudgeRecord]:
        batch_ids = [a.batch_id for a in state.attempts if a.batch_id]
        records = []
        for request in requests:
            scores: dict[Metric, MetricScore | str] = {}
            for metric in METRICS:
                body, error = results.get(custom_id(request.key, metric), (None, "no result"))
                scores[metric] = self._score(body) if body is not None else str(error)
            record = self.inner.record(request, scores)
            records.append(
                record.model_copy(update={"extra": {**record.extra, "batch_ids": batch_ids}})
            )
        return self.inner.finish(records)

    def _score(self, body: dict[str, Any]) -> MetricScore | str:
        try:
            return self.inner.score_completion(body)
        except ValueError as exc:
            return describe_error(exc)


class _BatchRun:
    """The state machine of one request file: submit, poll, download, join."""

    def __init__(
        self, judge: BatchJudge, folder: Path, digest: str, lines: list[dict[str, Any]]
    ) -> None:
        self.judge = judge
        self.folder = folder
        self.digest = digest
        self.lines = lines
        self.state_path = folder / "state.json"
        folder.mkdir(parents=True, exist_ok=True)
        if self.state_path.exists():
            self.state = BatchState.model_validate_json(self.state_path.read_text())
            log.info("re-attaching to batch state %s", self.state_path)
        else:
            self.state = BatchState(
                requests_sha256=digest,
                judge=judge.identity,
                mode=judge.mode,
                n_requests=len(lines),
            )
            self.save()

    def save(self) -> None:
        tmp = self.state_path.with_suffix(".tmp")
        tmp.write_text(self.state.model_dump_json(indent=2), encoding="utf-8")
        tmp.replace(self.state_path)

    async def retried(self, call: Callable[[], Awaitable[Any]]) -> Any:
        return await call_with_retries(call, self.judge.inner.retry, sleep=self.judge._sleep)

    def collected(self) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
        """Results of every downloaded attempt: a success anywhere wins, else the latest error."""
        results: dict[str, tuple[dict[str, Any] | None, str | None]] = {}
        for attempt in self.state.attempts:
            for kind in ("output", "errors"):
                for line in read_jsonl(self.folder / f"attempt-{attempt.index}.{kind}.jsonl"):
                    cid = str(line.get("custom_id"))
                    if results.get(cid, (None, None))[0] is None:
                        results[cid] = result_of_line(line)
        return results

    async def results(
        self, client: AsyncOpenAI
    ) -> dict[str, tuple[dict[str, Any] | None, str | None]]:
        submitted = False
        while True:
            attempt = self.state.attempts[-1] if self.state.attempts else None
            if attempt is not None and not attempt.downloaded:
                await self.finish_attempt(client, attempt)
                continue
            results = self.collected()
            missing = [ln for ln in self.lines if results.get(ln["custom_id"], (None,))[0] is None]
            if not missing or submitted:
                return results
            await self.submit(client, missing)
            submitted = True

    async def submit(self, client: AsyncOpenAI, lines: list[dict[str, Any]]) -> None:
        index = len(self.state.attempts)
        attempt = BatchAttempt(index=index, n_requests=len(lines))
        self.state.attempts.append(attempt)
        path = self.folder / f"attempt-{index}.input.jsonl"
        path.write_text("".join(json.dumps(ln, sort_keys=True) + "\n" for ln in lines), "utf-8")
        self.save()
        await self.ensure_batch(client, attempt)

    async def ensure_batch(self, client: AsyncOpenAI, attempt: BatchAttempt) -> None:
        """Upload the input file and create the batch, unless the state says it is done."""
        if attempt.batch_id is None:
            found = await self.find_existing(client, attempt.index)
            if found is not None:
                attempt.batch_id, attempt.input_file_id = found
                self.save()
        path = self.folder / f"attempt-{attempt.index}.input.jsonl"
        if attempt.input_file_id is None:
            content = path.read_bytes()
            uploaded = await self.retried(
                lambda: client.files.create(file=(path.name, content), purpose="batch")
            )
            attempt.input_file_id = uploaded.id
            self.save()
        if attempt.batch_id is None:
            metadata = {METADATA_KEY: self.digest, "emscope_attempt": str(attempt.index)}
            input_file_id = attempt.input_file_id
            batch = await self.retried(
                lambda: client.batches.create(
                    input_file_id=input_file_id,
                    endpoint=CHAT_URL,
                    completion_window="24h",
                    metadata=metadata,
                )
            )
            attempt.batch_id, attempt.status = batch.id, batch.status
            attempt.updated_at = time.time()
            self.save()
            log.info("created batch %s with %d requests", batch.id, attempt.n_requests)

    async def find_existing(self, client: AsyncOpenAI, index: int) -> tuple[str, str] | None:
        """A batch created for this request file and attempt whose id was never saved."""
        page = await self.retried(lambda: client.batches.list(limit=100))
        for batch in page.data:
            meta = batch.metadata or {}
            if meta.get(METADATA_KEY) == self.digest and meta.get("emscope_attempt") == str(index):
                log.info("found batch %s created before a restart", batch.id)
                return batch.id, batch.input_file_id
        return None

    async def finish_attempt(self, client: AsyncOpenAI, attempt: BatchAttempt) -> None:
        """Make sure the batch exists, poll it to the end, download its output and errors."""
        await self.ensure_batch(client, attempt)
        await self.poll(client, attempt)
        if attempt.status == "failed":
            raise BatchFailed(
                f"batch {attempt.batch_id} failed: {attempt.errors}; state in {self.state_path}"
            )
        for kind, file_id in (
            ("output", attempt.output_file_id),
            ("errors", attempt.error_file_id),
        ):
            if file_id is None:
                continue
            response = await self.retried(partial(client.files.content, file_id))
            (self.folder / f"attempt-{attempt.index}.{kind}.jsonl").write_bytes(response.content)
        attempt.downloaded = True
        self.save()

    async def poll(self, client: AsyncOpenAI, attempt: BatchAttempt) -> None:
        judge = self.judge
        started = judge._clock()
        delay = judge.poll_initial_s
        batch_id = str(attempt.batch_id)
        while attempt.status not in TERMINAL:
            if judge.max_wait_s is not None and judge._clock() - started >= judge.max_wait_s:
                raise BatchStillRunning(
                    f"batch {batch_id} is {attempt.status}; call again to re-attach "
                    f"(state in {self.state_path})"
                )
            await judge._sleep(delay)
            delay = min(delay * judge.poll_factor, judge.poll_max_s)
            batch = await self.retried(lambda: client.batches.retrieve(batch_id))
            attempt.status = batch.status
            attempt.output_file_id = batch.output_file_id
            attempt.error_file_id = batch.error_file_id
            errors = batch.errors.data if batch.errors and batch.errors.data else []
            attempt.errors = [e.model_dump(mode="json") for e in errors]
            attempt.updated_at = time.time()
            self.save()
