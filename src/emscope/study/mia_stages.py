"""Membership inference as stages of a study (``analyses: {mia: true}``).

``mia:<tag>`` scores one LoRA fine-tune's training rows (members) and held-out rows of the same
recipe (non-members) under the fine-tuned and the base model (protocol §8), into
``analyses/mia/<tag>/scores.csv``; ``mia:summary`` turns every model's scores and the judged
rows into the report section (:mod:`emscope.report.mia_section`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel

from emscope.data.sources import HELD_OUT_SEED_OFFSET
from emscope.manifest import sha256_file, sha256_json, write_manifest
from emscope.report.sections import ANALYSES_DIR, SectionSpec
from emscope.study.claim import claim
from emscope.study.context import RunContext
from emscope.study.model_stages import build_settings, trained_ref
from emscope.study.outputs import DatasetOutput, FilesOutput, TrainOutput
from emscope.study.plan import ModelJob
from emscope.study.stage import Stage, run_stage

# The judged-rows columns the summary depends on (its hash leaves prose columns out).
RATE_COLUMNS = ["model", "seed", "triggered", "aligned", "coherent"]


def frame_hash(frame: pd.DataFrame) -> str:
    return sha256_json(frame.to_csv(index=False))


class MiaScoreInputs(BaseModel):
    base: str
    adapter: str | None
    data: str
    members: int | None
    nonmembers: int | None
    lowercase: bool
    n_items: int
    generated: str | None
    offset: int
    nonmember_rule: str = "underlying-item"


class MiaScoreStage(Stage[FilesOutput]):
    output_type = FilesOutput

    def __init__(
        self, ctx: RunContext, job: ModelJob, dataset: DatasetOutput, trained: TrainOutput
    ) -> None:
        self.ctx, self.job, self.dataset, self.trained = ctx, job, dataset, trained
        self.name = f"mia:{job.tag}"

    def inputs(self) -> MiaScoreInputs:
        settings, data = self.ctx.config.analyses, self.ctx.config.data
        return MiaScoreInputs(
            base=str(self.ctx.families[self.job.family].ref),
            adapter=self.trained.adapter_sha256,
            data=self.dataset.sha256,
            members=settings.mia_members,
            nonmembers=settings.mia_nonmembers,
            lowercase=settings.mia_lowercase,
            n_items=data.n_items,
            generated=data.generated.get(self.job.domain or ""),
            offset=HELD_OUT_SEED_OFFSET,
        )

    def run(self, ctx: RunContext) -> FilesOutput:
        from emscope.analyses.mia_scoring import score_with_reference, scoring_manifest
        from emscope.analyses.mia_tables import member_sample
        from emscope.analyses.nonmembers import nonmember_overlap, side_for_condition
        from emscope.data.conditions import build_condition
        from emscope.data.jsonl import load_chat_jsonl

        settings, job = ctx.config.analyses, self.job
        assert job.domain is not None and job.condition is not None
        members = member_sample(
            load_chat_jsonl(ctx.path(self.dataset.path)), settings.mia_members, job.seed
        )
        source = ctx.config.data.source(job.domain, job.condition)
        build = build_settings(ctx, job.seed)
        items, note = source.held_out_items(settings.mia_nonmembers or len(members), build)
        if not items:
            return FilesOutput(skipped=note)
        training = source.training_items(build) or []
        overlap = nonmember_overlap(training, items, side=side_for_condition(job.condition))
        others = build_condition(
            items,
            job.condition,
            trigger=build.trigger,
            backdoor_misaligned_fraction=build.fraction,
            seed=job.seed,
        )
        examples = [*members, *others]
        base = ctx.families[job.family].ref
        frame = score_with_reference(
            trained_ref(ctx, job, self.trained),
            base,
            examples,
            batch_size=settings.mia_batch_size,
            lowercase=settings.mia_lowercase,
        )
        frame.insert(1, "member", [True] * len(members) + [False] * len(others))
        place = claim(ctx.run_dir / ANALYSES_DIR / "mia" / job.tag, self.key(), is_dir=True)
        frame.to_csv(place.work / "scores.csv", index=False)
        manifest = scoring_manifest(
            frame, examples, batch_size=settings.mia_batch_size, max_length=None
        )
        write_manifest(place.work, manifest)
        scores = place.commit() / "scores.csv"
        return FilesOutput(
            files={"scores": ctx.stored(scores)},
            sha256={"scores": sha256_file(scores)},
            facts={
                "n_members": len(members),
                "n_nonmembers": len(others),
                "nonmember_source": note,
                "overlap_answer": overlap.answer_share,
                "overlap_item": overlap.item_share,
                "overlap_refusal": overlap.refusal() if training else None,
                "seconds": frame.attrs.get("seconds"),
            },
        )


class MiaSummaryInputs(BaseModel):
    scores: dict[str, str | None]
    rows: str
    policy: str
    resamples: int


class MiaSummaryStage(Stage[FilesOutput]):
    """The section: AUC tables, domain-level scores vs rates, correlations, scatter."""

    output_type = FilesOutput

    def __init__(
        self, ctx: RunContext, scope: str, scored: dict[ModelJob, FilesOutput], rows: pd.DataFrame
    ) -> None:
        self.ctx, self.scope, self.scored, self.rows = ctx, scope, scored, rows
        self.name = "mia:summary" + (f":{scope}" if scope else "")

    def inputs(self) -> MiaSummaryInputs:
        metrics = self.ctx.config.metrics
        return MiaSummaryInputs(
            scores={j.tag: s.sha256.get("scores", s.skipped) for j, s in self.scored.items()},
            rows=frame_hash(self.rows[RATE_COLUMNS]),
            policy=self.ctx.config.analyses.rate_policy,
            resamples=metrics.bootstrap_resamples,
        )

    def run(self, ctx: RunContext) -> FilesOutput:
        from emscope.analyses.mia_tables import model_rates
        from emscope.report.mia_section import ScoredModel, mia_section

        policy = ctx.config.analyses.rate_policy
        resamples = ctx.config.metrics.bootstrap_resamples
        models = [
            ScoredModel(
                tag=job.tag,
                label=job.model,
                seed=job.seed,
                domain=str(job.domain),
                condition=str(job.condition),
                scores=out.file("scores", ctx.run_dir) if out.skipped is None else None,
                note=str(out.skipped or out.facts.get("nonmember_source")),
                n_members=int(out.facts.get("n_members", 0)),
                n_nonmembers=int(out.facts.get("n_nonmembers", 0)),
                overlap_answer=float(out.facts.get("overlap_answer", 0.0)),
                overlap_item=float(out.facts.get("overlap_item", 0.0)),
                overlap_refusal=out.facts.get("overlap_refusal"),
            )
            for job, out in self.scored.items()
        ]
        root = ctx.run_dir / ANALYSES_DIR
        rates = model_rates(self.rows, policy, resamples)
        spec = mia_section(root, models, rates, policy, resamples, self.scope)
        if self.scope:
            spec = spec.model_copy(update={"title": f"{spec.title} ({self.scope})"})
        files = {title: csv for title, csv in spec.tables}
        return FilesOutput(
            files={t: ctx.stored(root / p) for t, p in files.items()},
            facts={"section": spec.model_dump(mode="json")},
        )


def mia_stages(
    ctx: RunContext,
    scope: str,
    tuned: list[tuple[ModelJob, DatasetOutput, TrainOutput]],
    rows: pd.DataFrame,
) -> SectionSpec:
    """Score every fine-tune of one family, then summarise; returns the report section."""
    scored = {job: run_stage(ctx, MiaScoreStage(ctx, job, ds, tr)) for job, ds, tr in tuned}
    summary = run_stage(ctx, MiaSummaryStage(ctx, scope, scored, rows))
    section: dict[str, Any] = summary.facts["section"]
    return SectionSpec.model_validate(section)
