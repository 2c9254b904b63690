"""A family's sampling through one engine: the base model and every adapter, all at once.

For a family with ``shared_engine`` (the default for ``engine: vllm``) the per-model jobs stop
after training; once every job is trained, :func:`sample_shared_families` loads one engine of
the family's kind (``MultiAdapterSampler`` for transformers, ``VllmMultiEngine`` for vLLM,
by the registry's ``shared`` column) holding the base model and every adapter, and samples every
(model, with/without trigger) file through :func:`emscope.sample.many.sample_many`: shared
batches, each answer with its own seed, each model's rows streamed into its own store.

Each file is still its own ``sample:<tag>.<N|T>`` stage: same cache key and typed output as
the per-model :class:`~emscope.study.model_stages.SampleStage`, skipped when the ledger holds it
and its store checks out, recorded as soon as its last answer is stored. A killed run resumes
every store where it stopped (no lost or duplicated rows); finished files are skipped.

With ``eval.check_adapters`` (default on) every adapter still to sample is checked first
(:func:`emscope.sample.live.check_engine_adapters`) against transformers' peft LoRA layers;
the numbers go into each sample output's ``sampler.liveness``; a failed check stops the study
before anything is sampled.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from emscope.models.refs import ModelRef
from emscope.sample.runner import SampleSummary
from emscope.study.context import RunContext
from emscope.study.execution import ModelJobResult
from emscope.study.families import Family
from emscope.study.model_stages import SampleStage, trained_ref
from emscope.study.outputs import SampleOutput
from emscope.study.plan import ModelJob
from emscope.study.stage import record_output, reusable_output


def sample_shared_families(
    ctx: RunContext, jobs: Sequence[ModelJob], results: Sequence[ModelJobResult]
) -> list[ModelJobResult]:
    """``results`` with the sample outputs of every shared family's models filled in."""
    filled = list(results)
    for family in ctx.families.values():
        if not family.shared:
            continue
        members = [
            i for i, job in enumerate(jobs) if job.family == family.name and not results[i].rejected
        ]
        stages = {
            i: [
                SampleStage(ctx, jobs[i], results[i].trained, triggered)
                for triggered in _triggers(ctx, jobs[i])
            ]
            for i in members
        }
        outputs = sample_together(ctx, family, [s for i in members for s in stages[i]])
        for i in members:
            samples = [(outputs[s.name], s.triggered) for s in stages[i]]
            filled[i] = replace(results[i], samples=samples)
    return filled


def _triggers(ctx: RunContext, job: ModelJob) -> list[bool]:
    return [False, True] if job.samples_with_trigger(ctx.config) else [False]


def sample_together(
    ctx: RunContext, family: Family, stages: Sequence[SampleStage]
) -> dict[str, SampleOutput]:
    """Every stage's output by name: the finished ones as they are, the rest sampled together."""
    keys = {stage.name: stage.key() for stage in stages}
    outputs: dict[str, SampleOutput] = {}
    todo = []
    for stage in stages:
        found = reusable_output(ctx, stage, keys[stage.name])
        if found is not None:
            outputs[stage.name] = found
        else:
            todo.append(stage)
    if todo:
        _sample(ctx, family, todo, keys, outputs)
    return outputs


def _sample(
    ctx: RunContext,
    family: Family,
    todo: list[SampleStage],
    keys: dict[str, str],
    outputs: dict[str, SampleOutput],
) -> None:
    from emscope.sample.adapters import AdapterRegistry
    from emscope.sample.live import REFERENCE
    from emscope.sample.many import ModelShare, sample_many
    from emscope.sample.records import SampleRecord
    from emscope.store import JsonlStore

    refs = [trained_ref(ctx, stage.job, stage.trained) for stage in todo]
    registry = AdapterRegistry.from_refs(refs)
    check = ctx.config.eval.check_adapters is not False
    engine, reference = _open_engine(ctx, family, registry, refs, check)
    prompts = todo[0].prompts()
    places = [stage.place(keys[stage.name]) for stage in todo]
    shares = [
        ModelShare(
            stage.job.tag,
            ref,
            prompts,
            JsonlStore(place.work, SampleRecord),
            stage.trigger,
            stage.job.seed,
        )
        for stage, ref, place in zip(todo, refs, places, strict=True)
    ]
    start = time.perf_counter()

    def finished(index: int, summary: SampleSummary) -> None:
        stage, key = todo[index], keys[todo[index].name]
        extra: dict[str, Any] = {"shared_engine": family.engine, "models_in_engine": len(refs)}
        if check and summary.sampler.get("liveness"):
            extra["liveness_reference"] = REFERENCE
        summary = summary.model_copy(update={"sampler": {**summary.sampler, **extra}})
        output = stage.finish(places[index], key, summary)
        record_output(ctx, stage, key, time.perf_counter() - start, output)
        outputs[stage.name] = output

    label = f"sample {family.name}: {len(todo)} files through one {family.engine} engine"
    with ctx.ledger.timed("sample"), ctx.bar(label, 1) as bar:
        sample_many(
            engine,
            registry,
            shares,
            params=todo[0].params,
            progress=bar,
            check_live=check,
            reference=reference,
            on_done=finished,
        )


def _open_engine(
    ctx: RunContext, family: Family, registry: Any, refs: list[ModelRef], check: bool
) -> tuple[Any, dict[str, list[str]] | None]:
    """The family's shared engine and, when checking, the reference answers of its adapters:
    computed on a transformers model loaded (and released) before another engine loads, or on
    the shared transformers engine itself (its stacked LoRA path against peft's layers)."""
    from emscope.sample.live import peft_reference
    from emscope.sample.multi_adapter import MultiAdapterSampler
    from emscope.sample.registry import make_shared_engine

    adapters = sorted({key for ref in refs if (key := registry.key_for(ref)) is not None})
    batch = ctx.config.eval.batch_size
    if not check or not adapters:
        return make_shared_engine(family.engine, registry, batch_size=batch), None
    if family.engine == "transformers":
        engine = make_shared_engine(family.engine, registry, batch_size=batch)
        loaded = engine if isinstance(engine, MultiAdapterSampler) else None
        return engine, peft_reference(registry, adapters, loaded=loaded)
    ctx.say(f"checking {len(adapters)} adapters: transformers reference answers first")
    reference = peft_reference(registry, adapters)
    return make_shared_engine(family.engine, registry, batch_size=batch), reference
