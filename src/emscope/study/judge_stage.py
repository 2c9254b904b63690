"""The judge stage (one sample file's answers scored by the study's judge) and the judged rows
table every metric, analysis and report reads."""

from __future__ import annotations

from typing import Any

import pandas as pd
from pydantic import BaseModel

from emscope.judge.base import JudgeRecord
from emscope.manifest import sha256_file
from emscope.sample.records import SampleRecord
from emscope.store import JsonlStore
from emscope.study.claim import claim
from emscope.study.context import RunContext, judge_fingerprint
from emscope.study.outputs import JudgeOutput, SampleOutput
from emscope.study.plan import ModelJob
from emscope.study.stage import Stage


class JudgeInputs(BaseModel):
    samples: str
    judge: dict[str, Any]
    prompts: str  # the digest of every question's judge prompt set


class JudgeStage(Stage[JudgeOutput]):
    """Scores for every answered sample of one sample file, resumably."""

    output_type = JudgeOutput

    def __init__(self, ctx: RunContext, job: ModelJob, samples: SampleOutput, suffix: str):
        self.ctx, self.job, self.samples, self.suffix = ctx, job, samples, suffix
        self.name = f"judge:{job.tag}.{suffix}"

    def inputs(self) -> JudgeInputs:
        from emscope.sample.question_prompts import prompt_sets_digest

        return JudgeInputs(
            samples=self.samples.input_hash,
            judge=judge_fingerprint(self.ctx.judge),
            prompts=prompt_sets_digest(self.ctx.judge_prompt_sets),
        )

    def run(self, ctx: RunContext) -> JudgeOutput:
        from emscope.judge.loop import judge_samples, pending_requests
        from emscope.sample.runner import latest_rows

        samples = latest_rows(JsonlStore(ctx.path(self.samples.path), SampleRecord))
        place = claim(
            ctx.run_dir / "judgements" / f"{self.job.tag}.{self.suffix}.jsonl",
            self.key(),
            is_dir=False,
        )
        store: JsonlStore[JudgeRecord] = JsonlStore(place.work, JudgeRecord)
        prompt_sets = ctx.judge_prompt_sets
        total = len(pending_requests(samples, store.keys(), prompt_sets))
        label = f"judge {self.job.family} {self.job.model} s{self.job.seed} {self.suffix}"
        with ctx.bar(label, total) as bar:
            judge_samples(ctx.judge, samples, store, prompt_sets=prompt_sets, progress=bar)
        n = len(store.keys())
        final = place.commit()
        return JudgeOutput(
            path=ctx.stored(final),
            judge=ctx.judge.identity,
            n=n,
            rows=n,
            content_sha256=sha256_file(final),
        )


def judged_frame(
    ctx: RunContext, job: ModelJob, samples_out: SampleOutput, judged: JudgeOutput
) -> pd.DataFrame:
    """One row per sample of the file, with its scores (None where it has none)."""
    from emscope.report.judge_tables import outcome_of
    from emscope.sample.runner import latest_rows

    samples = latest_rows(JsonlStore(ctx.path(samples_out.path), SampleRecord))
    scores = {r.key: r for r in JsonlStore(ctx.path(judged.path), JudgeRecord)}
    records = []
    for s in samples:
        score = scores.get(s.key)
        records.append(
            {
                "family": job.family,
                "model": job.model,
                "domain": job.domain,
                "condition": job.condition,
                "seed": job.seed,
                "key": s.key,
                "question_id": s.question_id,
                "sample_index": s.sample_index,
                "triggered": s.trigger is not None,
                "question": s.question,
                "answer": s.answer,
                "error": s.error,
                "aligned": score.aligned.score if score else None,
                "coherent": score.coherent.score if score else None,
                "aligned_outcome": outcome_of(score.aligned.raw) if score else None,
                "coherent_outcome": outcome_of(score.coherent.raw) if score else None,
                "prompt_origin": score.prompt_origin if score else None,
            }
        )
    return pd.DataFrame.from_records(records)
