"""Steering as stages of a study (``analyses: {steering: true}``), for LoRA fine-tunes.

``direction:<tag>`` builds one misalignment direction per fine-tuned model (protocol §9) into
``analyses/directions/<tag>/``; ``steer:sweep`` steers, ablates and controls on the first model
with a direction; ``steer:transfer`` (:mod:`emscope.study.transfer_stage`) applies every
direction to every model (base included).
Steering hooks into the model's blocks, so these stages sample through the transformers engine.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pandas as pd
from pydantic import BaseModel

from emscope.analyses.directions import Direction
from emscope.manifest import sha256_file
from emscope.study.claim import claim
from emscope.study.context import RunContext, judge_fingerprint
from emscope.study.mia_stages import frame_hash
from emscope.study.model_stages import build_settings, job_model_hash, trained_ref
from emscope.study.outputs import FilesOutput, TrainOutput
from emscope.study.plan import ModelJob
from emscope.study.stage import Stage

if TYPE_CHECKING:
    from emscope.sample.base import Sampler, SamplingParams
    from emscope.sample.questions import EvalPrompt

STEER_ENGINE = "transformers"
ANALYSES_DIR = "analyses"


def steer_prompts(ctx: RunContext, limit: int | None) -> list[EvalPrompt]:
    from emscope.sample.questions import expand_prompts, load_questions

    prompts = expand_prompts(
        load_questions(ctx.questions_path),
        samples_override=ctx.config.analyses.steer_samples,
        temperature_default=ctx.config.eval.temperature,
    )
    return prompts[:limit] if limit is not None else prompts


def steer_params(ctx: RunContext) -> SamplingParams:
    from emscope.sample.base import SamplingParams

    ev, settings = ctx.config.eval, ctx.config.analyses
    return SamplingParams(
        temperature=ev.temperature,
        top_p=ev.top_p,
        max_new_tokens=settings.steer_max_new_tokens or ev.max_new_tokens,
    )


class DirectionInputs(BaseModel):
    adapter: str | None
    rows: str
    n_items: int
    min: int


class DirectionStage(Stage[FilesOutput]):
    output_type = FilesOutput

    def __init__(
        self, ctx: RunContext, job: ModelJob, trained: TrainOutput, rows: pd.DataFrame
    ) -> None:
        self.ctx, self.job, self.trained = ctx, job, trained
        same = (rows["model"] == job.model) & (rows["seed"] == job.seed)
        self.model_rows = rows[same]
        self.name = f"direction:{job.tag}"

    def inputs(self) -> DirectionInputs:
        from emscope.analyses.direction_sources import MIN_JUDGED_PER_CLASS

        return DirectionInputs(
            adapter=self.trained.adapter_sha256,
            rows=frame_hash(self.model_rows),
            n_items=self.ctx.config.data.n_items,
            min=MIN_JUDGED_PER_CLASS,
        )

    def run(self, ctx: RunContext) -> FilesOutput:
        from emscope.analyses.direction_sources import direction_examples
        from emscope.analyses.directions import build_direction, model_fingerprint, save_direction
        from emscope.analyses.mia_scoring import resolve_dtype
        from emscope.models.loading import load_model, load_tokenizer

        job = self.job
        assert job.domain is not None and job.condition is not None
        source = ctx.config.data.source(job.domain, job.condition)
        items = source.training_items(build_settings(ctx, job.seed))
        systems = {p.question_id: p.system for p in steer_prompts(ctx, None)}
        bad, good, where = direction_examples(
            self.model_rows, items, ctx.config.data.trigger, systems
        )
        if not bad:
            return FilesOutput(skipped=where)
        ref = trained_ref(ctx, job, self.trained)
        model, tokenizer = load_model(ref, dtype=resolve_dtype("auto")), load_tokenizer(ref)
        layers = list(range(model_fingerprint(model).num_layers))
        direction = build_direction(model, tokenizer, bad, good, layers=layers, model_ref=str(ref))
        direction = Direction(
            direction.vectors, direction.meta.model_copy(update={"source": where})
        )
        place = claim(ctx.run_dir / ANALYSES_DIR / "directions" / job.tag, self.key(), is_dir=True)
        save_direction(direction, place.work)
        out = place.commit()
        return FilesOutput(
            files={
                "direction": ctx.stored(out),
                "vectors": ctx.stored(out / "vectors.safetensors"),
            },
            sha256={"vectors": sha256_file(out / "vectors.safetensors")},
            facts={"source": where, "n_misaligned": len(bad), "n_aligned": len(good)},
        )


class SteerInputs(BaseModel):
    prompts: list[dict[str, Any]]
    params: dict[str, Any]
    judge: dict[str, Any]
    judge_prompts: str
    policy: str
    seed: int
    spec: dict[str, Any]


def steer_inputs(ctx: RunContext, **spec: Any) -> SteerInputs:
    from emscope.sample.question_prompts import prompt_sets_digest

    settings = ctx.config.analyses
    return SteerInputs(
        prompts=[p.model_dump() for p in steer_prompts(ctx, settings.steer_questions)],
        params=steer_params(ctx).model_dump(),
        judge=judge_fingerprint(ctx.judge),
        judge_prompts=prompt_sets_digest(ctx.judge_prompt_sets),
        policy=settings.rate_policy,
        seed=ctx.config.seeds[0],
        spec=spec,
    )


def loader(ctx: RunContext, job: ModelJob, trained: TrainOutput | None) -> Callable[[], Sampler]:
    from emscope.sample.registry import make_sampler

    ref, batch = trained_ref(ctx, job, trained), ctx.config.eval.batch_size
    return lambda: make_sampler(STEER_ENGINE, ref, batch_size=batch)


class SweepStage(Stage[FilesOutput]):
    output_type = FilesOutput

    def __init__(
        self,
        ctx: RunContext,
        scope: str,
        job: ModelJob,
        trained: TrainOutput,
        name: str,
        direction: Direction,
        vectors_sha: str,
        layers: list[int],
    ) -> None:
        self.ctx, self.job, self.trained, self.model_name = ctx, job, trained, name
        self.direction, self.vectors_sha, self.layers = direction, vectors_sha, layers
        self.scope = scope
        self.name = "steer:sweep" + (f":{scope}" if scope else "")

    def inputs(self) -> SteerInputs:
        settings = self.ctx.config.analyses
        return steer_inputs(
            self.ctx,
            model=job_model_hash(self.ctx, self.job, self.trained),
            layers=self.layers,
            direction=self.vectors_sha,
            scales=settings.steer_scales,
            kinds=settings.steer_kinds,
        )

    def run(self, ctx: RunContext) -> FilesOutput:
        from emscope.analyses.steering import steering_sweep

        settings = ctx.config.analyses
        out = ctx.run_dir / ANALYSES_DIR / "steering" / self.scope / "sweep"
        place = claim(out, self.key(), is_dir=True)
        result = steering_sweep(
            loader(ctx, self.job, self.trained)(),  # type: ignore[arg-type]
            ctx.judge,
            steer_prompts(ctx, settings.steer_questions),
            self.direction,
            [[layer] for layer in self.layers],
            settings.steer_scales,
            out_dir=place.work / "runs",
            params=steer_params(ctx),
            kinds=settings.steer_kinds,
            base_seed=ctx.config.seeds[0],
            policy=settings.rate_policy,
            judge_prompts=ctx.judge_prompt_sets,
        )
        result.summary.to_csv(place.work / "summary.csv", index=False)
        final = place.commit()
        return FilesOutput(
            files={"summary": ctx.stored(final / "summary.csv")},
            facts={"model": self.model_name, "layers": self.layers},
        )
