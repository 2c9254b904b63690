"""The membership-inference prior as stages of a study (``analyses: {mia_prior: true,
mia_reference: <non-instruct base>}``).

``mia-prior:<domain>.<condition>`` scores the training rows of one domain and condition (the
first seed's dataset) under the family's un-fine-tuned model and under the reference model, into
``analyses/mia_prior/<scope>/<domain>.<condition>/scores.csv``; ``mia-prior:summary`` correlates
the per-domain difference with the domains' rates (:mod:`emscope.report.prior_section`). Nothing
here needs a fine-tuned model.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel

from emscope.manifest import sha256_file, write_manifest
from emscope.report.sections import ANALYSES_DIR, SectionSpec
from emscope.study.claim import claim
from emscope.study.context import RunContext
from emscope.study.mia_stages import RATE_COLUMNS, frame_hash
from emscope.study.outputs import DatasetOutput, FilesOutput, TrainOutput
from emscope.study.plan import ModelJob
from emscope.study.stage import Stage, run_stage


class PriorScoreInputs(BaseModel):
    model: str
    reference: str
    data: str
    members: int | None
    lowercase: bool


class PriorScoreStage(Stage[FilesOutput]):
    """One domain and condition's training rows under the un-fine-tuned and reference model."""

    output_type = FilesOutput

    def __init__(self, ctx: RunContext, scope: str, job: ModelJob, dataset: DatasetOutput):
        self.ctx, self.scope, self.job, self.dataset = ctx, scope, job, dataset
        self.part = f"{job.domain}.{job.condition}"
        self.name = "mia-prior:" + (f"{scope}:" if scope else "") + self.part

    def inputs(self) -> PriorScoreInputs:
        settings = self.ctx.config.analyses
        assert settings.mia_reference is not None
        return PriorScoreInputs(
            model=str(self.ctx.families[self.job.family].ref),
            reference=settings.mia_reference,
            data=self.dataset.sha256,
            members=settings.mia_members,
            lowercase=settings.mia_lowercase,
        )

    def run(self, ctx: RunContext) -> FilesOutput:
        from emscope.analyses.mia_scoring import score_with_reference, scoring_manifest
        from emscope.analyses.mia_tables import member_sample
        from emscope.data.jsonl import load_chat_jsonl
        from emscope.models.refs import parse_model_ref

        settings, job = ctx.config.analyses, self.job
        assert settings.mia_reference is not None
        rows = member_sample(
            load_chat_jsonl(ctx.path(self.dataset.path)), settings.mia_members, job.seed
        )
        frame = score_with_reference(
            ctx.families[job.family].ref,
            parse_model_ref(settings.mia_reference),
            rows,
            batch_size=settings.mia_batch_size,
            lowercase=settings.mia_lowercase,
        )
        out_dir = ctx.run_dir / ANALYSES_DIR / "mia_prior" / self.scope / self.part
        place = claim(out_dir, self.key(), is_dir=True)
        frame.to_csv(place.work / "scores.csv", index=False)
        write_manifest(
            place.work,
            scoring_manifest(frame, rows, batch_size=settings.mia_batch_size, max_length=None),
        )
        scores = place.commit() / "scores.csv"
        return FilesOutput(
            files={"scores": ctx.stored(scores)},
            sha256={"scores": sha256_file(scores)},
            facts={"n_rows": len(rows), "seconds": frame.attrs.get("seconds")},
        )


class PriorSummaryInputs(BaseModel):
    scores: dict[str, str]
    rows: str
    policy: str
    resamples: int


class PriorSummaryStage(Stage[FilesOutput]):
    """The prior's report section: per-domain scores and their correlation with the rates."""

    output_type = FilesOutput

    def __init__(
        self,
        ctx: RunContext,
        scope: str,
        family: str,
        scored: dict[tuple[str, str], FilesOutput],
        rows: pd.DataFrame,
    ) -> None:
        self.ctx, self.scope, self.family, self.scored, self.rows = ctx, scope, family, scored, rows
        self.name = "mia-prior:summary" + (f":{scope}" if scope else "")

    def inputs(self) -> PriorSummaryInputs:
        return PriorSummaryInputs(
            scores={f"{d}.{c}": s.sha256["scores"] for (d, c), s in self.scored.items()},
            rows=frame_hash(self.rows[RATE_COLUMNS]),
            policy=self.ctx.config.analyses.rate_policy,
            resamples=self.ctx.config.metrics.bootstrap_resamples,
        )

    def run(self, ctx: RunContext) -> FilesOutput:
        from emscope.analyses.mia_tables import model_rates
        from emscope.report.prior_section import prior_section

        settings = ctx.config.analyses
        assert settings.mia_reference is not None
        root = ctx.run_dir / ANALYSES_DIR
        scored = [
            (domain, condition, pd.read_csv(out.file("scores", ctx.run_dir)))
            for (domain, condition), out in self.scored.items()
        ]
        rates = model_rates(self.rows, settings.rate_policy, ctx.config.metrics.bootstrap_resamples)
        spec = prior_section(
            root,
            scored,
            rates,
            model=str(ctx.families[self.family].ref),
            reference=settings.mia_reference,
            policy=settings.rate_policy,
            scope=self.scope,
        )
        if self.scope:
            spec = spec.model_copy(update={"title": f"{spec.title} ({self.scope})"})
        return FilesOutput(
            files={t: ctx.stored(root / p) for t, p in spec.tables},
            facts={"section": spec.model_dump(mode="json")},
        )


def prior_stages(
    ctx: RunContext,
    scope: str,
    family: str,
    tuned: list[tuple[ModelJob, DatasetOutput, TrainOutput]],
    rows: pd.DataFrame,
) -> SectionSpec:
    """Score each domain and condition's data once (its first seed's dataset), then summarise."""
    first: dict[tuple[str, str], tuple[ModelJob, DatasetOutput]] = {}
    for job, dataset, _ in sorted(tuned, key=lambda t: t[0].seed):
        first.setdefault((str(job.domain), str(job.condition)), (job, dataset))
    scored = {
        part: run_stage(ctx, PriorScoreStage(ctx, scope, job, dataset))
        for part, (job, dataset) in first.items()
    }
    summary = run_stage(ctx, PriorSummaryStage(ctx, scope, family, scored, rows))
    section: dict[str, Any] = summary.facts["section"]
    return SectionSpec.model_validate(section)
