"""The per-model stages of a study: dataset -> train -> sample.

Each stage's inputs are a pydantic model whose dump is the cache key's content; the fields keep
the names (and so the keys) the stages had before they were typed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from emscope.data.sources import BuildSettings
from emscope.manifest import sha256_file
from emscope.models.identity import model_hash
from emscope.models.refs import ModelRef
from emscope.sample.base import SamplingParams
from emscope.study.claim import Claim, claim
from emscope.study.context import RunContext
from emscope.study.outputs import LORA_WEIGHTS, DatasetOutput, SampleOutput, TrainOutput
from emscope.study.plan import ModelJob
from emscope.study.stage import Stage

if TYPE_CHECKING:
    from emscope.sample.questions import EvalPrompt
    from emscope.sample.runner import SampleSummary
    from emscope.train.registry import TrainOutcome


def build_settings(ctx: RunContext, seed: int) -> BuildSettings:
    data = ctx.config.data
    return BuildSettings(
        n_items=data.n_items,
        seed=seed,
        trigger=data.trigger,
        fraction=data.backdoor_misaligned_fraction,
    )


class DatasetInputs(BaseModel):
    domain: str
    condition: str
    n: int
    seed: int
    trigger: str
    fraction: float
    source: str
    diversity: bool


class DatasetStage(Stage[DatasetOutput]):
    """One domain/condition/seed dataset, from its source (:mod:`emscope.data.sources`)."""

    output_type = DatasetOutput

    def __init__(self, ctx: RunContext, job: ModelJob) -> None:
        assert job.domain is not None and job.condition is not None
        self.ctx, self.job = ctx, job
        # Datasets do not depend on the family: every family trains on the same one.
        self.name = f"dataset:{job.dataset_tag}"
        self.source = ctx.config.data.source(job.domain, job.condition)

    def inputs(self) -> DatasetInputs:
        data, job = self.ctx.config.data, self.job
        return DatasetInputs(
            domain=str(job.domain),
            condition=str(job.condition),
            n=data.n_items,
            seed=job.seed,
            trigger=data.trigger,
            fraction=data.backdoor_misaligned_fraction,
            source=self.source.fingerprint(),
            diversity=data.diversity,
        )

    def run(self, ctx: RunContext) -> DatasetOutput:
        place = claim(ctx.run_dir / "datasets" / self.job.dataset_tag, self.key(), is_dir=True)
        train_file, description = self.source.build(place.work, build_settings(ctx, self.job.seed))
        output: dict[str, Any] = {"source": description, "sha256": sha256_file(train_file)}
        if ctx.config.data.diversity:
            from emscope.data.diversity import write_dataset_stats

            stats = write_dataset_stats(train_file.parent, seed=self.job.seed)
            output["user_vendi_1"] = stats.user_diversity.vendi.get("1")
            output["assistant_vendi_1"] = stats.assistant_diversity.vendi.get("1")
            output["assistant_pairwise"] = stats.assistant_diversity.pairwise_diversity
        output["rows"] = _count_lines(train_file)
        final = place.commit() / train_file.relative_to(place.work)
        return DatasetOutput(path=ctx.stored(final), **output)


class TrainInputs(BaseModel):
    base: str
    data: str
    train: dict[str, Any]


class TrainStage(Stage[TrainOutput]):
    """A fine-tune of the family's base model on one dataset, by the family's trainer."""

    output_type = TrainOutput

    def __init__(self, ctx: RunContext, job: ModelJob, dataset: DatasetOutput) -> None:
        self.ctx, self.job, self.dataset = ctx, job, dataset
        self.family = ctx.families[job.family]
        self.name = f"train:{job.tag}"

    def inputs(self) -> TrainInputs:
        return TrainInputs(
            base=str(self.family.ref),
            data=self.dataset.sha256,
            train=self.family.train_settings(self.job.seed),
        )

    def run(self, ctx: RunContext) -> TrainOutput:
        from emscope.train.openai_state import STATE_FILE
        from emscope.train.registry import TrainingRejected

        trainer = self.family.trainer
        # Same inputs: resume from the last checkpoint (or re-attach to the API job); other
        # inputs: train beside the finished model and swap it in once done.
        place = claim(ctx.run_dir / "models" / self.job.tag, self.key(), is_dir=True)
        label = f"train {self.job.family} {self.job.model} s{self.job.seed}"
        try:
            with ctx.bar(label, 1) as bar:
                outcome = self._train(place.work, bar)
        except TrainingRejected as exc:  # recorded: a rerun never submits the data again
            ctx.say(f"[red]rejected[/red] {self.name}: {exc}")
            state = place.commit() / STATE_FILE
            return TrainOutput(
                trainer=trainer.name, rejected=str(exc), state_file=ctx.stored(state)
            )
        if outcome.adapter_dir is None:
            state = place.commit() / STATE_FILE
            return TrainOutput(
                trainer=trainer.name,
                fine_tuned_model=outcome.fine_tuned_model,
                state_file=ctx.stored(state),
            )
        sha = sha256_file(outcome.adapter_dir / LORA_WEIGHTS)
        final = place.commit() / outcome.adapter_dir.relative_to(place.work)
        return TrainOutput(
            trainer=trainer.name,
            adapter_dir=ctx.stored(final),
            adapter_sha256=sha,
            final_loss=outcome.final_loss,
            n_truncated=outcome.n_truncated,
        )

    def _train(self, out_dir: Path, bar: Callable[[int, int], None]) -> TrainOutcome:
        from emscope.train.registry import TrainJob

        return self.family.trainer.run(
            TrainJob(
                base=self.family.ref,
                data=self.ctx.path(self.dataset.path),
                settings=self.family.train_settings(self.job.seed),
                seed=self.job.seed,
                out_dir=out_dir,
                progress=bar,
                echo=lambda line: self.ctx.say(f"  {self.job.tag}: {line}"),
                poll_interval_s=self.family.train.poll_interval_s,
            )
        )


def trained_ref(ctx: RunContext, job: ModelJob, trained: TrainOutput | None) -> ModelRef:
    """The model a job samples: the family's base, with its adapter or as its API fine-tune."""
    from emscope.models.refs import parse_model_ref

    base = ctx.families[job.family].ref
    if trained is None:
        return base
    if trained.trainer == "lora":
        return base.with_adapter(ctx.path(str(trained.adapter_dir)))
    return parse_model_ref(str(trained.fine_tuned_model))


def job_model_hash(ctx: RunContext, job: ModelJob, trained: TrainOutput | None) -> str:
    """The job's model hash (:func:`emscope.models.identity.model_hash`)."""
    base = str(ctx.families[job.family].ref)
    return model_hash(base, trained.weights_id if trained is not None else None)


class SampleInputs(BaseModel):
    model: str
    questions: str
    samples_per_paraphrase: int | None
    params: dict[str, Any]
    trigger: str | None
    seed: int
    engine: str | None = None  # None: transformers (the engine every older key was made by)


class SampleStage(Stage[SampleOutput]):
    """Every (question, paraphrase, sample) of the suite from one model, with or without the
    trigger, through the family's engine, resumably."""

    output_type = SampleOutput
    omit_when_none: ClassVar[tuple[str, ...]] = ("engine",)

    def __init__(
        self, ctx: RunContext, job: ModelJob, trained: TrainOutput | None, triggered: bool
    ) -> None:
        self.ctx, self.job, self.trained, self.triggered = ctx, job, trained, triggered
        self.suffix = "T" if triggered else "N"
        self.name = f"sample:{job.tag}.{self.suffix}"
        self.engine = ctx.families[job.family].engine
        ev = ctx.config.eval
        self.params = SamplingParams(
            temperature=ev.temperature, top_p=ev.top_p, max_new_tokens=ev.max_new_tokens
        )

    def inputs(self) -> SampleInputs:
        ev = self.ctx.config.eval
        return SampleInputs(
            model=job_model_hash(self.ctx, self.job, self.trained),
            questions=sha256_file(self.ctx.questions_path),
            samples_per_paraphrase=ev.samples_per_paraphrase,
            params=self.params.model_dump(),
            trigger=self.ctx.config.data.trigger if self.triggered else None,
            seed=self.job.seed,
            engine=None if self.engine == "transformers" else self.engine,
        )

    @property
    def trigger(self) -> str | None:
        return self.ctx.config.data.trigger if self.triggered else None

    def prompts(self) -> list[EvalPrompt]:
        from emscope.sample.questions import expand_prompts, load_questions

        ev = self.ctx.config.eval
        return expand_prompts(
            load_questions(self.ctx.questions_path),
            samples_override=ev.samples_per_paraphrase,
            temperature_default=ev.temperature,
        )

    def place(self, key: str) -> Claim:
        """Where this stage's store is written (its final file, or beside it; see claim)."""
        final = self.ctx.run_dir / "samples" / f"{self.job.tag}.{self.suffix}.jsonl"
        return claim(final, key, is_dir=False)

    def finish(self, place: Claim, key: str, summary: SampleSummary) -> SampleOutput:
        """Swap the store in and describe it (the typed output the ledger keeps)."""
        from emscope.sample.records import SampleRecord
        from emscope.store import JsonlStore

        rows = len(JsonlStore(place.work, SampleRecord).keys())
        final = place.commit()
        return SampleOutput(
            path=self.ctx.stored(final),
            input_hash=key,
            rows=rows,
            content_sha256=sha256_file(final),
            **summary.model_dump(),
        )

    def run(self, ctx: RunContext) -> SampleOutput:
        from emscope.sample.records import SampleRecord
        from emscope.sample.runner import sample_answers
        from emscope.store import JsonlStore

        key = self.key()
        place = self.place(key)
        sampler = ctx.sampler(self.engine, trained_ref(ctx, self.job, self.trained))
        label = f"sample {self.job.family} {self.job.model} s{self.job.seed}"
        with ctx.bar(label + (" +trigger" if self.triggered else ""), 1) as bar:
            summary = sample_answers(
                sampler,
                self.prompts(),
                model_tag=self.job.tag,
                store=JsonlStore(place.work, SampleRecord),
                trigger=self.trigger,
                params=self.params,
                base_seed=self.job.seed,
                progress=bar,
            )
        return self.finish(place, key, summary)


def _count_lines(path: Any) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())
