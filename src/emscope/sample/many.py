"""Sample several models of one base in shared batches, each into its own resumable store.

A study's sampling is many (model, trigger) pairs over one base model. :func:`sample_many`
plans each pair's jobs exactly as :func:`~emscope.sample.runner.sample_answers` would (same
keys, same seeds), skips the keys each store already holds, and sends the rest to one
:class:`MultiModelEngine` in mixed batches: every row names its adapter. Each finished batch
is split by model and appended to the models' own stores, so a rerun neither loses nor
duplicates rows, and every store can be read by the single-model code.

Mixing models in a batch is only sound when a row's answer does not depend on its batch, so
the engine must sample with per-row seeds (``info()["per_row_seeds"]``).

>>> shares = [ModelShare("a.s0", ref_a, prompts, store_a, None, 0)]  # doctest: +SKIP
>>> sample_many(engine, registry, shares, params=SamplingParams())  # doctest: +SKIP
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from emscope.errors import EmscopeError
from emscope.models.refs import ModelRef
from emscope.sample.adapters import AdapterRegistry
from emscope.sample.base import ChatPrompt, Generation, SamplingParams
from emscope.sample.questions import EvalPrompt
from emscope.sample.records import SampleRecord
from emscope.sample.runner import (
    ProgressFn,
    SampleJob,
    SampleSummary,
    batch_params,
    job_chat,
    latest_rows,
    make_record,
    plan_jobs,
)
from emscope.store import JsonlStore

log = logging.getLogger(__name__)


class MultiModelEngine(Protocol):
    """An engine holding one base model and named adapters (``None`` = the base)."""

    @property
    def batch_size(self) -> int: ...

    def info(self) -> dict[str, Any]: ...

    def generate_mixed(
        self,
        prompts: list[ChatPrompt],
        params: SamplingParams,
        seeds: list[int],
        models: Sequence[str | None],
    ) -> list[Generation]: ...


@dataclass(frozen=True)
class ModelShare:
    """One model's part of a shared run: its prompts, trigger, seed and store."""

    model_tag: str
    ref: ModelRef
    prompts: list[EvalPrompt]
    store: JsonlStore[SampleRecord]
    trigger: str | None
    base_seed: int


@dataclass(frozen=True)
class _Pending:
    share: int  # index into the shares
    job: SampleJob
    model: str | None  # adapter name


def plan_shared_batches(pending: list[_Pending], batch_size: int) -> list[list[_Pending]]:
    """Consecutive runs of at most ``batch_size`` pending jobs sharing a temperature."""
    batches: list[list[_Pending]] = []
    for item in pending:
        last = batches[-1] if batches else None
        same = last and last[0].job.prompt.temperature == item.job.prompt.temperature
        if last and same and len(last) < batch_size:
            last.append(item)
        else:
            batches.append([item])
    return batches


def sample_many(
    engine: MultiModelEngine,
    registry: AdapterRegistry,
    shares: Sequence[ModelShare],
    *,
    params: SamplingParams,
    batch_size: int | None = None,
    progress: ProgressFn | None = None,
    check_live: bool = False,
    reference: dict[str, list[str]] | None = None,
    on_done: Callable[[int, SampleSummary], None] | None = None,
) -> list[SampleSummary]:
    """Generate every missing answer of every share; one summary per share, in order.

    ``check_live`` first runs :func:`~emscope.sample.live.check_engine_adapters` on every
    adapter the shares use (against ``reference``, the transformers engine's greedy answers,
    when given); a failed check raises before anything is sampled, and each summary records
    its adapter's numbers under ``sampler["liveness"]``. ``on_done(index, summary)`` is called
    as soon as a share's last answer is stored (shares with nothing left: before sampling), so a
    caller can record each finished model while the others are still sampling.
    """
    info = engine.info()
    if not info.get("per_row_seeds"):
        raise EmscopeError(
            f"{info.get('backend')}: mixed-model batches need an engine with per-row seeds"
        )
    if len({id(share.store) for share in shares}) != len(shares):
        raise EmscopeError("two shares write to the same store")
    pending: list[_Pending] = []
    totals, already = [0] * len(shares), [0] * len(shares)
    for index, share in enumerate(shares):
        jobs = plan_jobs(
            share.prompts,
            model_tag=share.model_tag,
            triggered=share.trigger is not None,
            base_seed=share.base_seed,
        )
        done = {row.key for row in latest_rows(share.store) if row.error is None}
        model = registry.key_for(share.ref)
        totals[index] = len(jobs)
        already[index] = sum(job.key in done for job in jobs)
        pending.extend(_Pending(index, job, model) for job in jobs if job.key not in done)
    liveness: dict[str | None, dict[str, Any]] = {}
    if check_live:
        from emscope.sample.live import check_engine_adapters

        used = sorted({item.model for item in pending if item.model is not None})
        for report in check_engine_adapters(engine, used, reference=reference):
            liveness[report.model] = report.as_dict()
    generated, errors = [0] * len(shares), [0] * len(shares)
    left = [0] * len(shares)
    for item in pending:
        left[item.share] += 1

    def summary(i: int) -> SampleSummary:
        key = registry.key_for(shares[i].ref)
        return SampleSummary(
            total=totals[i],
            already_done=already[i],
            generated=generated[i],
            errors=errors[i],
            sampler={**info, "model_key": key, "liveness": liveness.get(key)},
        )

    for index in range(len(shares)):
        if on_done and not left[index]:
            on_done(index, summary(index))
    finished, total = sum(already), sum(totals)
    if progress:
        progress(finished, total)
    for batch in plan_shared_batches(pending, batch_size or engine.batch_size):
        rows = _run_shared_batch(engine, shares, batch, params)
        for index in sorted({item.share for item in batch}):
            mine = [row for item, row in zip(batch, rows, strict=True) if item.share == index]
            shares[index].store.append(mine)
            generated[index] += sum(row.error is None for row in mine)
            errors[index] += sum(row.error is not None for row in mine)
            left[index] -= len(mine)
            if on_done and not left[index]:
                on_done(index, summary(index))
        finished += len(rows)
        if progress:
            progress(finished, total)
    return [summary(i) for i in range(len(shares))]


def _run_shared_batch(
    engine: MultiModelEngine,
    shares: Sequence[ModelShare],
    batch: list[_Pending],
    params: SamplingParams,
) -> list[SampleRecord]:
    this_params = batch_params(params, [item.job for item in batch])
    chats = [job_chat(item.job, shares[item.share].trigger) for item in batch]
    try:
        generations = engine.generate_mixed(
            chats, this_params, [item.job.seed for item in batch], [item.model for item in batch]
        )
        if len(generations) != len(batch):
            raise RuntimeError(f"engine returned {len(generations)} answers for {len(batch)}")
    except Exception as exc:  # recorded per row and retried on rerun, never dropped
        log.warning("generation failed for a mixed batch of %d: %r", len(batch), exc)
        message = f"{type(exc).__name__}: {exc}"
        return [_row(shares, item, this_params, None, message) for item in batch]
    return [
        _row(shares, item, this_params, generation, None)
        for item, generation in zip(batch, generations, strict=True)
    ]


def _row(
    shares: Sequence[ModelShare],
    item: _Pending,
    params: SamplingParams,
    generation: Generation | None,
    error: str | None,
) -> SampleRecord:
    share = shares[item.share]
    return make_record(item.job, share.model_tag, share.trigger, params, generation, error)
