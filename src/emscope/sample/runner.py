"""Sample every (question, paraphrase, sample) once, resumably, into an append-only store.

Each sample has a deterministic key (:func:`sample_key`) and seed (:func:`sample_seed`). Keys
already answered in the store are skipped; the rest are generated in fixed batches, in a fixed
order, and every finished batch is appended at once. A run killed midway loses at most the batch
in flight, and a rerun neither loses nor duplicates rows. A batch whose generation raises is
stored as rows with ``error`` set, so a failure is visible, and a rerun retries those keys.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from emscope.sample.base import ChatPrompt, Generation, Sampler, SamplingParams
from emscope.sample.questions import EvalPrompt
from emscope.sample.records import SampleRecord, sample_key
from emscope.store import JsonlStore

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int], None]


class SampleSummary(BaseModel):
    """What one call of :func:`sample_answers` did."""

    total: int
    already_done: int
    generated: int
    errors: int
    sampler: dict[str, Any]


@dataclass(frozen=True)
class SampleJob:
    """One answer to generate: its key, prompt, sample index and seed."""

    key: str
    prompt: EvalPrompt
    sample_index: int
    seed: int


def sample_seed(base_seed: int, key: str) -> int:
    """A 31-bit seed that depends only on the base seed and the sample key."""
    digest = hashlib.sha256(f"{base_seed}|{key}".encode()).digest()
    return int.from_bytes(digest[:4], "big") & 0x7FFFFFFF


def plan_jobs(
    prompts: list[EvalPrompt], *, model_tag: str, triggered: bool, base_seed: int
) -> list[SampleJob]:
    """Every sample, prompt by prompt in the given order, then by sample index."""
    jobs: list[SampleJob] = []
    for prompt in prompts:
        for index in range(prompt.n_samples):
            key = sample_key(
                model_tag, prompt.question_id, prompt.paraphrase_index, index, triggered
            )
            jobs.append(SampleJob(key, prompt, index, sample_seed(base_seed, key)))
    if len({job.key for job in jobs}) != len(jobs):
        raise ValueError("two prompts share a question id and paraphrase index")
    return jobs


def plan_batches(jobs: list[SampleJob], batch_size: int) -> list[list[SampleJob]]:
    """Consecutive runs of at most ``batch_size`` jobs that share a temperature.

    The layout depends only on the full job list, so a resumed run batches the remaining jobs
    as the uninterrupted run would have (which matters only for a sampler without per-row
    seeds; see ``docs/sampling.md``).
    """
    batches: list[list[SampleJob]] = []
    for job in jobs:
        last = batches[-1] if batches else None
        if last and len(last) < batch_size and last[0].prompt.temperature == job.prompt.temperature:
            last.append(job)
        else:
            batches.append([job])
    return batches


def latest_rows(store: JsonlStore[SampleRecord]) -> list[SampleRecord]:
    """One row per key, the latest written winning (a retried error is replaced by its answer)."""
    latest: dict[str, SampleRecord] = {}
    for row in store:
        latest[row.key] = row
    return list(latest.values())


def sample_answers(
    sampler: Sampler,
    prompts: list[EvalPrompt],
    *,
    model_tag: str,
    store: JsonlStore[SampleRecord],
    trigger: str | None,
    params: SamplingParams,
    base_seed: int,
    progress: ProgressFn | None = None,
    batch_size: int | None = None,
) -> SampleSummary:
    """Generate every missing answer for ``prompts`` and append it to ``store``.

    ``trigger`` is prepended to the user turn at generation time only; the stored ``question``
    stays raw and ``trigger`` is recorded beside it. Each prompt's own temperature replaces
    ``params.temperature``. ``batch_size`` defaults to the sampler's.
    """
    jobs = plan_jobs(
        prompts, model_tag=model_tag, triggered=trigger is not None, base_seed=base_seed
    )
    done = {row.key for row in latest_rows(store) if row.error is None}
    batches = plan_batches(jobs, batch_size or sampler.batch_size)
    pending = [[job for job in batch if job.key not in done] for batch in batches]
    already_done = sum(job.key in done for job in jobs)
    finished, generated, errors = already_done, 0, 0
    if progress:
        progress(finished, len(jobs))
    for batch in pending:
        if not batch:
            continue
        rows = _run_batch(sampler, batch, model_tag=model_tag, trigger=trigger, params=params)
        store.append(rows)
        generated += sum(row.error is None for row in rows)
        errors += sum(row.error is not None for row in rows)
        finished += len(rows)
        if progress:
            progress(finished, len(jobs))
    return SampleSummary(
        total=len(jobs),
        already_done=already_done,
        generated=generated,
        errors=errors,
        sampler=sampler.info(),
    )


def job_chat(job: SampleJob, trigger: str | None) -> ChatPrompt:
    """The chat a job sends: the trigger (if any) prepended to the raw question."""
    return ChatPrompt(user=(trigger or "") + job.prompt.question, system=job.prompt.system)


def batch_params(params: SamplingParams, batch: list[SampleJob]) -> SamplingParams:
    """``params`` with the batch's temperature (every job of a batch shares one)."""
    return SamplingParams.model_validate(
        {**params.model_dump(), "temperature": batch[0].prompt.temperature}
    )


def _run_batch(
    sampler: Sampler,
    batch: list[SampleJob],
    *,
    model_tag: str,
    trigger: str | None,
    params: SamplingParams,
) -> list[SampleRecord]:
    this_params = batch_params(params, batch)
    chats = [job_chat(job, trigger) for job in batch]
    try:
        generations = sampler.generate(chats, this_params, [job.seed for job in batch])
        if len(generations) != len(batch):
            raise RuntimeError(f"sampler returned {len(generations)} answers for {len(batch)}")
    except Exception as exc:  # recorded per row and retried on rerun, never dropped
        log.warning(
            "generation failed for a batch of %d (first key %s): %r", len(batch), batch[0].key, exc
        )
        message = f"{type(exc).__name__}: {exc}"
        return [make_record(job, model_tag, trigger, this_params, None, message) for job in batch]
    return [
        make_record(job, model_tag, trigger, this_params, generation, None)
        for job, generation in zip(batch, generations, strict=True)
    ]


def make_record(
    job: SampleJob,
    model_tag: str,
    trigger: str | None,
    params: SamplingParams,
    generation: Generation | None,
    error: str | None,
) -> SampleRecord:
    """The stored row of one job: its answer, or ``error`` when generation failed."""
    return SampleRecord(
        key=job.key,
        model=model_tag,
        question_id=job.prompt.question_id,
        paraphrase_index=job.prompt.paraphrase_index,
        sample_index=job.sample_index,
        question=job.prompt.question,
        system=job.prompt.system,
        trigger=trigger,
        answer=generation.text if generation else None,
        error=error,
        finish_reason=generation.finish_reason if generation else None,
        n_new_tokens=generation.n_new_tokens if generation else None,
        seed=job.seed,
        params=params.model_dump(),
    )
