from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from emscope.errors import EmscopeError
from emscope.models.refs import ModelRef
from emscope.sample.adapters import AdapterRegistry
from emscope.sample.base import ChatPrompt, Generation, SamplingParams
from emscope.sample.local import LocalSampler
from emscope.sample.many import ModelShare, sample_many
from emscope.sample.multi_adapter import MultiAdapterSampler
from emscope.sample.questions import EvalPrompt
from emscope.sample.records import SampleRecord
from emscope.sample.runner import latest_rows, sample_answers
from emscope.store import JsonlStore

PARAMS = SamplingParams(temperature=1.0, max_new_tokens=4)
BASE = ModelRef(kind="local", name="/models/base")


def prompts(n: int, samples: int = 2, temperature: float = 1.0) -> list[EvalPrompt]:
    return [
        EvalPrompt(
            question_id=f"q{i}",
            paraphrase_index=0,
            question=f"Question {i}?",
            temperature=temperature,
            n_samples=samples,
        )
        for i in range(n)
    ]


class FakeEngine:
    """Answers from (model, prompt, seed); records every call; can fail on a given call."""

    def __init__(self, batch_size: int = 3, fail_on_call: int | None = None) -> None:
        self.batch_size = batch_size
        self.fail_on_call = fail_on_call
        self.calls: list[list[str | None]] = []

    def info(self) -> dict[str, Any]:
        return {"backend": "fake", "per_row_seeds": True}

    def generate_mixed(
        self,
        prompts: list[ChatPrompt],
        params: SamplingParams,
        seeds: list[int],
        models: Sequence[str | None],
    ) -> list[Generation]:
        self.calls.append(list(models))
        if len(self.calls) == self.fail_on_call:
            raise RuntimeError("out of memory")
        return [
            Generation(text=f"{m}:{p.user}:{s}", n_new_tokens=1, finish_reason="stop")
            for p, s, m in zip(prompts, seeds, models, strict=True)
        ]


def shares(tmp_path: Path, refs: list[ModelRef], triggers: list[str | None]) -> list[ModelShare]:
    return [
        ModelShare(
            model_tag=f"m{i}",
            ref=ref,
            prompts=prompts(3),
            store=JsonlStore(tmp_path / f"m{i}.jsonl", SampleRecord),
            trigger=trigger,
            base_seed=i,
        )
        for i, (ref, trigger) in enumerate(zip(refs, triggers, strict=True))
    ]


def test_models_share_batches_and_each_row_lands_in_its_own_store(tmp_path: Path) -> None:
    refs = [BASE.with_adapter("/ad/x"), BASE.with_adapter("/ad/y"), BASE]
    work = shares(tmp_path, refs, [None, "|T| ", None])
    engine = FakeEngine(batch_size=4)
    summaries = sample_many(engine, AdapterRegistry.from_refs(refs), work, params=PARAMS)
    assert [s.generated for s in summaries] == [6, 6, 6]
    assert any(len(set(models)) > 1 for models in engine.calls)  # batches really mix models
    assert [len(c) for c in engine.calls] == [4, 4, 4, 4, 2]
    for share, key in zip(work, ["a0", "a1", None], strict=True):
        rows = latest_rows(share.store)
        assert len(rows) == 6 and all(r.model == share.model_tag for r in rows)
        assert all(r.answer is not None and r.answer.startswith(f"{key}:") for r in rows)
        assert all(r.trigger == share.trigger for r in rows)
    triggered = latest_rows(work[1].store)[0]
    assert triggered.question == "Question 0?" and "|T| Question 0?" in (triggered.answer or "")


def test_keys_and_seeds_are_those_of_single_model_sampling(tmp_path: Path) -> None:
    from emscope.sample.runner import plan_jobs

    work = shares(tmp_path, [BASE.with_adapter("/ad/x")], [None])
    sample_many(FakeEngine(), AdapterRegistry.from_refs([work[0].ref]), work, params=PARAMS)
    jobs = plan_jobs(work[0].prompts, model_tag="m0", triggered=False, base_seed=0)
    stored = {r.key: r.seed for r in latest_rows(work[0].store)}
    assert stored == {j.key: j.seed for j in jobs}


def test_a_rerun_after_a_failed_batch_fills_the_gap_without_duplicates(tmp_path: Path) -> None:
    refs = [BASE.with_adapter("/ad/x"), BASE]
    registry = AdapterRegistry.from_refs(refs)
    work = shares(tmp_path, refs, [None, None])
    first = sample_many(FakeEngine(batch_size=4, fail_on_call=2), registry, work, params=PARAMS)
    assert sum(s.errors for s in first) == 4
    engine = FakeEngine(batch_size=4)
    again = sample_many(engine, registry, work, params=PARAMS)
    assert sum(s.generated for s in again) == 4 and sum(s.already_done for s in again) == 8
    assert sum(len(c) for c in engine.calls) == 4
    third = FakeEngine()
    sample_many(third, registry, work, params=PARAMS)
    assert third.calls == []
    for share in work:
        rows = latest_rows(share.store)
        assert len(rows) == 6 and all(r.error is None for r in rows)
        assert len([r for r in share.store if r.error is None]) == 6  # no duplicated answers


def test_batches_never_mix_temperatures(tmp_path: Path) -> None:
    refs = [BASE.with_adapter("/ad/x"), BASE]
    work = shares(tmp_path, refs, [None, None])
    hot = ModelShare(
        "hot",
        BASE,
        prompts(2, temperature=0.7),
        JsonlStore(tmp_path / "h.jsonl", SampleRecord),
        None,
        5,
    )
    engine = FakeEngine(batch_size=16)
    sample_many(engine, AdapterRegistry.from_refs(refs), [*work, hot], params=PARAMS)
    assert [len(c) for c in engine.calls] == [12, 4]
    assert {r.params["temperature"] for r in latest_rows(hot.store)} == {0.7}


def test_an_engine_without_per_row_seeds_cannot_mix_models(tmp_path: Path) -> None:
    engine = FakeEngine()
    engine.info = lambda: {"backend": "old", "per_row_seeds": False}  # type: ignore[method-assign]
    work = shares(tmp_path, [BASE], [None])
    with pytest.raises(EmscopeError, match="per-row seeds"):
        sample_many(engine, AdapterRegistry.from_refs([BASE]), work, params=PARAMS)


def test_shared_sampling_stores_what_each_model_samples_alone(
    lora_family: dict[str, Path], tmp_path: Path
) -> None:
    base = ModelRef(kind="local", name=str(lora_family["base"]))
    refs = [base.with_adapter(lora_family["a"]), base.with_adapter(lora_family["b"]), base]
    registry = AdapterRegistry.from_refs(refs)
    engine = MultiAdapterSampler(registry, dtype="float32", batch_size=5)
    work = shares(tmp_path / "mixed", refs, [None, "|T| ", None])
    sample_many(engine, registry, work, params=PARAMS)
    for share in work:
        own: JsonlStore[SampleRecord] = JsonlStore(tmp_path / "alone" / "s.jsonl", SampleRecord)
        sampler = LocalSampler(share.ref, dtype="float32", batch_size=2)
        sample_answers(
            sampler,
            share.prompts,
            model_tag=share.model_tag,
            store=own,
            trigger=share.trigger,
            params=PARAMS,
            base_seed=share.base_seed,
        )
        mixed = {r.key: (r.answer, r.seed) for r in latest_rows(share.store)}
        assert mixed == {r.key: (r.answer, r.seed) for r in latest_rows(own)}
        own.path.unlink()


def test_a_dead_adapter_stops_shared_sampling_before_any_row_is_written(
    lora_family: dict[str, Path], tmp_path: Path
) -> None:
    from emscope.sample.live import AdapterCheckError

    base = ModelRef(kind="local", name=str(lora_family["base"]))
    refs = [base.with_adapter(lora_family["a"]), base.with_adapter(lora_family["zero"])]
    registry = AdapterRegistry.from_refs(refs)
    engine = MultiAdapterSampler(registry, dtype="float32", batch_size=4)
    work = shares(tmp_path, refs, [None, None])
    with pytest.raises(AdapterCheckError, match="a1: adapter not live"):
        sample_many(engine, registry, work, params=PARAMS, check_live=True)
    assert all(not share.store.path.exists() or not list(share.store) for share in work)
    live = work[:1]
    (summary,) = sample_many(engine, registry, live, params=PARAMS, check_live=True)
    assert summary.sampler["liveness"]["n_differing_from_base"] >= 1


def test_each_share_is_reported_done_as_soon_as_its_last_row_is_stored(tmp_path: Path) -> None:
    refs = [BASE.with_adapter("/ad/x"), BASE.with_adapter("/ad/y"), BASE]
    registry = AdapterRegistry.from_refs(refs)
    work = shares(tmp_path, refs, [None, None, None])
    sample_many(FakeEngine(batch_size=6), registry, work[2:], params=PARAMS)  # m2 done before
    engine = FakeEngine(batch_size=4)
    seen: list[tuple[int, int, int, int]] = []

    def done(index: int, summary: Any) -> None:
        stored = len(latest_rows(work[index].store))
        seen.append((index, len(engine.calls), stored, summary.generated))

    sample_many(engine, registry, work, params=PARAMS, on_done=done)
    # m2 had nothing left: reported before any batch; m0 after batch 2, m1 after batch 3
    assert seen == [(2, 0, 6, 0), (0, 2, 6, 6), (1, 3, 6, 6)]
