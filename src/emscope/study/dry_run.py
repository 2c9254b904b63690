"""``emscope run STUDY --dry-run``: what a run would do, from the study file and the ledger alone.

Nothing is trained, sampled, judged or loaded. Per family: its model, trainer and engine; per
job: each stage's state (done, resumable with rows already stored, or to run); and the totals a
user pays for: answers to sample, judge requests to send, and how many of those the judge cache
already holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from rich.console import Console
from rich.table import Table

from emscope.sample.records import SampleRecord
from emscope.store import JsonlStore
from emscope.study.claim import owner_of
from emscope.study.config import StudyConfig
from emscope.study.context import RunContext
from emscope.study.judge_stage import JudgeStage
from emscope.study.model_stages import DatasetStage, SampleStage, TrainStage
from emscope.study.outputs import SampleOutput, TrainOutput
from emscope.study.plan import ModelJob, plan_jobs
from emscope.study.stage import trusted_output


@dataclass
class DryRun:
    """The plan's counts; ``lines`` are its table rows (family, job, trainer, engine, stages)."""

    answers_to_sample: int = 0
    answers_stored: int = 0
    judge_requests: int = 0
    judge_cache_hits: int = 0
    judge_unknown: int = 0  # answers not sampled yet: every one will be a judge request
    lines: list[tuple[str, ...]] = field(default_factory=list)


def plan_run(config: StudyConfig, run_dir: Path) -> DryRun:
    """The dry run of ``config`` into ``run_dir`` (which it does not create)."""
    ctx = RunContext(config, run_dir, Console(quiet=True), progress_bars=False)
    plan = DryRun()
    for job in plan_jobs(config):
        family = ctx.families[job.family]
        states = _job_states(ctx, job, plan)
        plan.lines.append(
            (
                job.family,
                job.tag,
                "-" if job.is_base else family.trainer.name,
                family.engine_label,
                ", ".join(states),
            )
        )
    return plan


def _job_states(ctx: RunContext, job: ModelJob, plan: DryRun) -> list[str]:
    states: list[str] = []
    trained: TrainOutput | None = None
    if not job.is_base:
        dataset = trusted_output(ctx, DatasetStage(ctx, job))
        states.append("dataset " + ("done" if dataset else "to run"))
        trained = trusted_output(ctx, TrainStage(ctx, job, dataset)) if dataset else None
        if trained is not None and trained.rejected:
            return [*states, "train rejected (not sampled)"]
        states.append("train " + ("done" if trained else "to run"))
    for triggered in [False, True] if job.samples_with_trigger(ctx.config) else [False]:
        states.append(
            _sample_state(
                ctx, job, trained, triggered, plan, upstream=job.is_base or trained is not None
            )
        )
    return states


def _sample_state(
    ctx: RunContext,
    job: ModelJob,
    trained: TrainOutput | None,
    triggered: bool,
    plan: DryRun,
    *,
    upstream: bool,
) -> str:
    suffix = "T" if triggered else "N"
    total = _answers_per_file(ctx)
    if not upstream:
        plan.answers_to_sample += total
        plan.judge_unknown += total
        return f"sample.{suffix} to run ({total})"
    stage = SampleStage(ctx, job, trained, triggered)
    done = trusted_output(ctx, stage)
    if done is None:
        stored = _stored_answers(ctx.run_dir / "samples" / f"{job.tag}.{suffix}.jsonl", stage.key())
        plan.answers_to_sample += total - stored
        plan.answers_stored += stored
        plan.judge_unknown += total
        return f"sample.{suffix} " + (
            f"resume ({stored}/{total})" if stored else f"to run ({total})"
        )
    plan.answers_stored += total
    return f"sample.{suffix} done, " + _judge_state(ctx, job, done, suffix, plan)


def _judge_state(
    ctx: RunContext, job: ModelJob, samples: SampleOutput, suffix: str, plan: DryRun
) -> str:
    from emscope.judge.base import JudgeRecord
    from emscope.judge.cache import CachedJudge
    from emscope.judge.loop import pending_requests
    from emscope.sample.runner import latest_rows

    stage = JudgeStage(ctx, job, samples, suffix)
    if trusted_output(ctx, stage) is not None:
        return "judge done"
    store_path = ctx.run_dir / "judgements" / f"{job.tag}.{suffix}.jsonl"
    done = (
        JsonlStore(store_path, JudgeRecord).keys()
        if owner_of(store_path, False) == stage.key()
        else set()
    )
    samples_rows = latest_rows(JsonlStore(ctx.path(samples.path), SampleRecord))
    todo = pending_requests(samples_rows, done, ctx.judge_prompt_sets)
    judge = ctx.judge
    hits = 0
    if isinstance(judge, CachedJudge) and todo:
        hits = len(judge.cache.get_many([judge.key_for(r) for r in todo]))
    plan.judge_requests += len(todo)
    plan.judge_cache_hits += hits
    return f"judge to run ({len(todo)}, {hits} cached)"


def _answers_per_file(ctx: RunContext) -> int:
    from emscope.sample.questions import expand_prompts, load_questions

    ev = ctx.config.eval
    prompts = expand_prompts(
        load_questions(ctx.questions_path),
        samples_override=ev.samples_per_paraphrase,
        temperature_default=ev.temperature,
    )
    return sum(p.n_samples for p in prompts)


def _stored_answers(path: Path, key: str) -> int:
    if owner_of(path, False) != key:
        return 0
    return sum(1 for row in JsonlStore(path, SampleRecord) if row.error is None)


def print_plan(plan: DryRun, config: StudyConfig, console: Console) -> None:
    table = Table("family", "job", "trainer", "engine", "stages", title=f"dry run: {config.name}")
    for line in plan.lines:
        table.add_row(*line)
    console.print(table)
    console.print(
        f"answers to sample: {plan.answers_to_sample} ({plan.answers_stored} already stored); "
        f"judge requests: {plan.judge_requests} known to send ({plan.judge_cache_hits} in the "
        f"judge cache) + up to {plan.judge_unknown} for answers not sampled yet"
    )
    console.print("nothing was run (dry run)")
