"""Run a study: build -> train -> sample -> judge -> metrics -> report, cached and resumable.

Every stage is keyed by a hash of its inputs (config plus upstream artifact hashes) in the run's
stage ledger. A finished stage is skipped on rerun; an interrupted sampling or judging stage resumes
from its append-only store, so nothing already done is lost or duplicated.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import yaml
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from emscope.errors import InputError
from emscope.judge.base import Judge, JudgeRecord
from emscope.manifest import Manifest, sha256_file, sha256_json, write_manifest
from emscope.models.refs import ModelRef, parse_model_ref
from emscope.sample.records import SampleRecord
from emscope.store import JsonlStore
from emscope.study.config import StudyConfig
from emscope.study.execution import ModelJobResult, executor_for
from emscope.study.ledger import StageLedger
from emscope.study.plan import ModelJob, plan_jobs

if TYPE_CHECKING:
    from emscope.report.render import ReportSection  # analyses' report sections
    from emscope.sample.question_prompts import PromptSet

JUDGE_BATCH = 64
ProgressFn = Callable[[int, int], None]


def resolve_questions_path(spec: str) -> Path:
    from emscope.sample.questions import builtin_suite

    if spec.startswith("builtin:"):
        return builtin_suite(spec.removeprefix("builtin:"))
    return Path(spec)


def make_judge(config: StudyConfig) -> Judge:
    """The study's judge, behind the SQLite cache unless the study turns it off."""
    from emscope.judge.cache import JudgeCache
    from emscope.judge.registry import JudgeOptions, make_judge_from_spec

    return make_judge_from_spec(
        config.judge.spec,
        cache=JudgeCache() if config.judge.cache else None,
        options=JudgeOptions(max_tokens=config.judge.max_tokens),
    )


def shutdown_warnings(config: StudyConfig, **clock: Any) -> list[str]:
    """Provider shutdown-date warnings for the study's API judge and ``openai/`` model.

    Raises :class:`~emscope.judge.shutdown.ModelShutDown` for one past its date; ``clock``
    (``today=``, ``ask=``) is passed to :func:`~emscope.judge.shutdown.check_shutdown`.
    """
    from emscope.judge.shutdown import check_judge_specs, check_shutdown
    from emscope.sample.openai_compat import ApiEndpoint

    warnings = check_judge_specs([config.judge.spec], **clock)
    if config.model.startswith("openai/"):
        endpoint = ApiEndpoint(model=config.model.removeprefix("openai/"))
        warning = check_shutdown(endpoint, role="study", **clock)
        warnings += [warning] if warning else []
    return warnings


def judge_fingerprint(judge: Judge) -> dict[str, Any]:
    """What makes two judges' scores comparable: identity, mode, prompts, request parameters."""
    return judge.fingerprint()


class _StageNotDone(Exception):
    """Raised while checking the ledger only, at the first stage it does not hold."""


def _open_store(path: Path, row_type: type[Any], input_hash: str) -> JsonlStore[Any]:
    """Open a resumable store; a store written under other inputs is set aside, never mixed in."""
    marker = path.with_name(path.name + ".inputhash")
    if path.exists() and (not marker.exists() or marker.read_text().strip() != input_hash):
        stale = path.with_name(f"{path.name}.stale-{int(time.time())}")
        path.replace(stale)
    path.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(input_hash + "\n")
    return JsonlStore(path, row_type)


class StudyRunner:
    """Executes one study into ``run_dir``; ``run()`` returns the report's HTML path.

    ``progress_bars=False`` prints one line per finished stage and no live bars (for Ray workers,
    whose output is forwarded line by line).
    """

    def __init__(
        self,
        config: StudyConfig,
        run_dir: Path,
        console: Console | None = None,
        *,
        progress_bars: bool = True,
    ) -> None:
        self.config = config
        self.run_dir = run_dir
        self.console = console or Console()
        self.progress_bars = progress_bars
        self.ledger = StageLedger(run_dir)
        self.base_ref = parse_model_ref(config.model)
        self.questions_path = resolve_questions_path(config.eval.questions)
        self._judge: Judge | None = None
        self._prompt_sets: dict[str, PromptSet] | None = None
        self._ledger_only = False

    def judge_prompt_sets(self) -> dict[str, PromptSet]:
        """Question id -> the judge prompts its answers are judged with, and their origin."""
        from emscope.sample.question_prompts import (
            forced_judge_prompts,
            questions_origin,
            study_prompt_sets,
        )
        from emscope.sample.questions import load_questions

        if self._prompt_sets is None:
            forced_file = self.config.judge.prompts
            forced = forced_judge_prompts(forced_file) if forced_file else None
            spec = self.config.eval.questions
            origin = spec if spec.startswith("builtin:") else questions_origin(spec)
            self._prompt_sets = study_prompt_sets(
                load_questions(self.questions_path), origin, forced
            )
        return self._prompt_sets

    # -- helpers -----------------------------------------------------------------------------

    @contextmanager
    def _bar(self, description: str, total: int) -> Iterator[ProgressFn]:
        if not self.progress_bars:
            yield lambda done, total_now: None
            return
        columns = (
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
        )
        with Progress(*columns, console=self.console, transient=False) as progress:
            task = progress.add_task(description, total=total)

            def update(done: int, total_now: int) -> None:
                progress.update(task, completed=done, total=total_now)

            yield update

    def _stage(
        self, name: str, input_hash: str, work: Callable[[], dict[str, Any]]
    ) -> dict[str, Any]:
        if self.ledger.is_done(name, input_hash):
            if not self._ledger_only:
                self.console.print(f"[dim]skip {name} (done)[/dim]")
            return self.ledger.output(name)
        if self._ledger_only:
            raise _StageNotDone(name)
        start = time.perf_counter()
        with self.ledger.timed(name.split(":")[0]):
            output = work()
        seconds = time.perf_counter() - start
        self.ledger.mark_done(name, input_hash, seconds, output)
        self.console.print(f"[green]done[/green] {name} in {seconds:.1f}s")
        return output

    # -- stages ------------------------------------------------------------------------------

    def dataset(self, job: ModelJob) -> dict[str, Any]:
        assert job.domain is not None and job.condition is not None
        domain, condition, data = job.domain, job.condition, self.config.data
        out_dir = self.run_dir / "datasets" / job.tag
        imported = data.imported.get(f"{domain}/{condition}")
        generated = data.generated.get(domain)
        source_hash = (
            sha256_file(imported)
            if imported
            else sha256_file(Path(generated) / "items.jsonl")
            if generated
            else "built-in"
        )
        params = {
            "domain": domain,
            "condition": condition,
            "n": data.n_items,
            "seed": job.seed,
            "trigger": data.trigger,
            "fraction": data.backdoor_misaligned_fraction,
            "source": source_hash,
            "diversity": data.diversity,
        }

        def work() -> dict[str, Any]:
            from emscope.data.build import build_dataset, build_dataset_from_items

            if imported:
                from emscope.data.importers import import_jsonl

                result = import_jsonl(Path(imported), out_dir, domain=domain, condition=condition)
                train_file, source = result.dataset_dir / "train.jsonl", f"imported: {imported}"
            elif generated:
                from emscope.data.generate import load_generated_items

                items = load_generated_items(generated)[: data.n_items]
                teacher = items[0].tags.get("teacher", "?") if items else "?"
                train_file = build_dataset_from_items(
                    items,
                    domain,
                    condition,
                    job.seed,
                    out_dir,
                    recipe=f"teacher:{teacher}",
                    trigger=data.trigger,
                    fraction=data.backdoor_misaligned_fraction,
                )
                source = f"generated by {teacher}"
            else:
                train_file = build_dataset(
                    domain,
                    condition,
                    data.n_items,
                    job.seed,
                    out_dir,
                    trigger=data.trigger,
                    fraction=data.backdoor_misaligned_fraction,
                )
                source = "built-in recipe"
            output: dict[str, Any] = {
                "path": str(train_file),
                "sha256": sha256_file(train_file),
                "source": source,
            }
            if data.diversity:
                from emscope.data.diversity import write_dataset_stats

                stats = write_dataset_stats(train_file.parent, seed=job.seed)
                output["rows"] = stats.rows
                output["user_vendi_1"] = stats.user_diversity.vendi.get("1")
                output["assistant_vendi_1"] = stats.assistant_diversity.vendi.get("1")
                output["assistant_pairwise"] = stats.assistant_diversity.pairwise_diversity
            return output

        return self._stage(f"dataset:{job.tag}", sha256_json(params), work)

    def train(self, job: ModelJob, dataset: dict[str, Any]) -> dict[str, Any]:
        from emscope.data.jsonl import load_chat_jsonl
        from emscope.train.config import get_preset
        from emscope.train.trainer import train_lora

        train_config = get_preset(
            self.config.train.preset, **{**self.config.train.overrides, "seed": job.seed}
        )
        out_dir = self.run_dir / "models" / job.tag
        input_hash = sha256_json(
            {
                "base": str(self.base_ref),
                "data": dataset["sha256"],
                "train": train_config.model_dump(),
            }
        )

        def work() -> dict[str, Any]:
            examples = load_chat_jsonl(dataset["path"])
            # Same inputs: resume from the last checkpoint; other inputs: start over.
            marker = out_dir / ".inputhash"
            if out_dir.exists() and (not marker.exists() or marker.read_text() != input_hash):
                shutil.rmtree(out_dir)
            out_dir.mkdir(parents=True, exist_ok=True)
            marker.write_text(input_hash)
            with self._bar(f"train {job.model} s{job.seed}", 1) as bar:
                result = train_lora(
                    self.base_ref,
                    examples,
                    train_config,
                    out_dir,
                    progress=lambda step, total, loss: bar(step, total),
                )
            weights = Path(result.adapter_dir) / "adapter_model.safetensors"
            return {
                "adapter_dir": str(result.adapter_dir),
                "adapter_sha256": sha256_file(weights),
                "final_loss": result.losses[-1] if result.losses else None,
                "n_truncated": result.n_truncated,
            }

        return self._stage(f"train:{job.tag}", input_hash, work)

    def sample(
        self,
        job: ModelJob,
        model_ref: ModelRef,
        model_hash: str,
        triggered: bool,
        sampler_cache: dict[str, Any],
    ) -> dict[str, Any]:
        from emscope.sample.local import LocalSampler, SamplingParams
        from emscope.sample.questions import expand_prompts, load_questions
        from emscope.sample.runner import sample_answers

        ev = self.config.eval
        params = SamplingParams(
            temperature=ev.temperature, top_p=ev.top_p, max_new_tokens=ev.max_new_tokens
        )
        trigger = self.config.data.trigger if triggered else None
        suffix = "T" if triggered else "N"
        input_hash = sha256_json(
            {
                "model": model_hash,
                "questions": sha256_file(self.questions_path),
                "samples_per_paraphrase": ev.samples_per_paraphrase,
                "params": params.model_dump(),
                "trigger": trigger,
                "seed": job.seed,
            }
        )
        path = self.run_dir / "samples" / f"{job.tag}.{suffix}.jsonl"

        def work() -> dict[str, Any]:
            questions = load_questions(self.questions_path)
            prompts = expand_prompts(
                questions,
                samples_override=ev.samples_per_paraphrase,
                temperature_default=ev.temperature,
            )
            store: JsonlStore[SampleRecord] = _open_store(path, SampleRecord, input_hash)
            if "sampler" not in sampler_cache:
                sampler_cache["sampler"] = LocalSampler(model_ref, batch_size=ev.batch_size)
            label = f"sample {job.model} s{job.seed} {'+trigger' if triggered else ''}"
            with self._bar(label, 1) as bar:
                summary = sample_answers(
                    sampler_cache["sampler"],
                    prompts,
                    model_tag=job.tag,
                    store=store,
                    trigger=trigger,
                    params=params,
                    base_seed=job.seed,
                    progress=bar,
                )
            return {"path": str(path), "input_hash": input_hash, **summary.model_dump()}

        return self._stage(f"sample:{job.tag}.{suffix}", input_hash, work)

    def judge(self, job: ModelJob, sample_output: dict[str, Any], suffix: str) -> dict[str, Any]:
        from emscope.sample.question_prompts import judge_requests_for, prompt_sets_digest
        from emscope.sample.runner import latest_rows

        if self._judge is None:
            self._judge = make_judge(self.config)
        judge = self._judge
        prompt_sets = self.judge_prompt_sets()
        input_hash = sha256_json(
            {
                "samples": sample_output["input_hash"],
                "judge": judge_fingerprint(judge),
                "prompts": prompt_sets_digest(prompt_sets),
            }
        )
        samples_path = Path(sample_output["path"])
        path = self.run_dir / "judgements" / f"{job.tag}.{suffix}.jsonl"

        def work() -> dict[str, Any]:
            samples = latest_rows(JsonlStore(samples_path, SampleRecord))
            store: JsonlStore[JudgeRecord] = _open_store(path, JudgeRecord, input_hash)
            todo = judge_requests_for(samples, prompt_sets, skip=store.keys())
            with self._bar(f"judge {job.model} s{job.seed} {suffix}", len(todo)) as bar:
                for start in range(0, len(todo), JUDGE_BATCH):
                    store.append(judge.judge(todo[start : start + JUDGE_BATCH]))
                    bar(min(start + JUDGE_BATCH, len(todo)), len(todo))
            return {"path": str(path), "judge": judge.identity, "n": len(store.keys())}

        return self._stage(f"judge:{job.tag}.{suffix}", input_hash, work)

    # -- one model ---------------------------------------------------------------------------

    def run_model_job(self, job: ModelJob) -> ModelJobResult:
        """Build, train and sample one model of the study; each stage is skipped when done."""
        seconds_before = dict(self.ledger.timings)
        dataset: dict[str, Any] | None = None
        if job.is_base:
            model_ref, model_hash = self.base_ref, str(self.base_ref)
        else:
            dataset = self.dataset(job)
            trained = self.train(job, dataset)
            model_ref = self.base_ref.with_adapter(trained["adapter_dir"])
            model_hash = sha256_json(
                {"base": str(self.base_ref), "adapter": trained["adapter_sha256"]}
            )
        sampler_cache: dict[str, Any] = {}  # one loaded model for both sample files
        modes = [False, True] if job.samples_with_trigger(self.config) else [False]
        samples = [
            (self.sample(job, model_ref, model_hash, triggered, sampler_cache), triggered)
            for triggered in modes
        ]
        stage_seconds = {
            stage: seconds - seconds_before.get(stage, 0.0)
            for stage, seconds in self.ledger.timings.items()
            if seconds != seconds_before.get(stage, 0.0)
        }
        return ModelJobResult(dataset=dataset, samples=samples, stage_seconds=stage_seconds)

    def cached_model_job(self, job: ModelJob) -> ModelJobResult | None:
        """The job's result when the ledger holds every one of its stages, else None.

        Runs no stage: an execution backend uses it to leave finished models alone.
        """
        self._ledger_only = True
        try:
            return self.run_model_job(job)
        except _StageNotDone:
            return None
        finally:
            self._ledger_only = False

    # -- whole run ---------------------------------------------------------------------------

    def run(self) -> Path:
        for warning in shutdown_warnings(self.config):
            self.console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / "study.yaml").write_text(
            yaml.safe_dump(self.config.model_dump(mode="json"), sort_keys=False), encoding="utf-8"
        )
        start = time.perf_counter()
        jobs = plan_jobs(self.config)
        results = executor_for(self.config.execution)(self, jobs)
        datasets = {
            job.tag: result.dataset
            for job, result in zip(jobs, results, strict=True)
            if result.dataset is not None
        }
        frames = []
        for job, result in zip(jobs, results, strict=True):
            for sample_out, triggered in result.samples:
                judge_out = self.judge(job, sample_out, "T" if triggered else "N")
                frames.append(_judged_frame(job, sample_out, judge_out))
        rows = pd.concat(frames, ignore_index=True)
        # -- analyses (emscope.study.analyses): MIA and steering stages, as report sections --
        from emscope.study.analyses import run_analyses

        sections = run_analyses(self, jobs, rows, datasets)
        # -- end analyses --
        report = self._report(rows, datasets, sections)
        wall = time.perf_counter() - start
        write_manifest(
            self.run_dir,
            Manifest(
                kind="study-run",
                config=self.config.model_dump(mode="json"),
                inputs={k: v["input_hash"] for k, v in self.ledger.entries.items()},
                outputs={
                    "report": str(report),
                    "stage_seconds": self.ledger.timings,
                    "wall_seconds": wall,
                },
            ),
        )
        self.console.print(f"[bold]report:[/bold] {report}  ({wall:.0f}s this run)")
        return report

    def _report(
        self,
        rows: pd.DataFrame,
        datasets: dict[str, dict[str, Any]],
        sections: list[ReportSection] | None = None,
    ) -> Path:
        from emscope.sample.question_prompts import prompt_provenance

        metrics_dir = self.run_dir / "metrics"
        metrics_dir.mkdir(parents=True, exist_ok=True)
        rows.to_csv(metrics_dir / "judged_rows.csv", index=False)
        pd.DataFrame(
            [
                {
                    "dataset": tag,
                    "rows": _count_lines(Path(info["path"])),
                    "source": info.get("source", "built-in recipe"),
                    "user Vendi (q=1)": info.get("user_vendi_1"),
                    "answer Vendi (q=1)": info.get("assistant_vendi_1"),
                    "answer 1-mean cos": info.get("assistant_pairwise"),
                    "sha256": info["sha256"][:12],
                }
                for tag, info in datasets.items()
            ]
        ).to_csv(metrics_dir / "datasets.csv", index=False)
        provenance = {
            "study": self.config.model_dump(mode="json"),
            "judge": self._judge.identity if self._judge else None,
            "judge_fingerprint": self._judge.fingerprint() if self._judge else None,
            "judge_prompts": prompt_provenance(self.judge_prompt_sets()),
            "stage_seconds": {k: round(v, 1) for k, v in self.ledger.timings.items()},
            "libraries": Manifest(kind="probe").libraries,
        }
        (metrics_dir / "provenance.json").write_text(
            json.dumps(provenance, indent=2, default=str), encoding="utf-8"
        )
        return render_run_report(self.run_dir, sections)


def render_run_report(run_dir: Path, sections: list[ReportSection] | None = None) -> Path:
    """(Re)write the report of a run from what the run stored on disk; returns the HTML path.

    ``sections`` defaults to the analysis sections the run stored (``analyses/sections.json``).
    """
    from emscope.metrics.trigger import summarize
    from emscope.report.render import write_report

    metrics_dir = run_dir / "metrics"
    rows_path = metrics_dir / "judged_rows.csv"
    if not rows_path.exists():
        raise InputError("no judged rows yet: run the study first", file=rows_path)
    rows = pd.read_csv(rows_path)
    summary = summarize(rows)
    summary.to_csv(metrics_dir / "summary.csv", index=False)
    extra: dict[str, pd.DataFrame] = {}
    datasets_path = metrics_dir / "datasets.csv"
    if datasets_path.exists() and datasets_path.stat().st_size > 1:
        extra["Datasets"] = pd.read_csv(datasets_path)
    provenance = json.loads((metrics_dir / "provenance.json").read_text(encoding="utf-8"))
    from emscope.report.judge_tables import judge_outcome_table, prompt_sets_table

    if provenance.get("judge_prompts"):
        extra["Judge prompts (origin and sha256 of the templates sent)"] = prompt_sets_table(
            provenance["judge_prompts"]
        )
    outcomes = judge_outcome_table(rows)
    if outcomes is not None:
        extra["Judge replies without a score (excluded from rates)"] = outcomes
    if sections is None:
        from emscope.study.analyses import analysis_sections

        sections = analysis_sections(run_dir)
    html, _markdown = write_report(
        run_dir, summary, provenance=provenance, extra_tables=extra or None, sections=sections
    )
    return html


def _count_lines(path: Path) -> int:
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def _judged_frame(
    job: ModelJob, sample_out: dict[str, Any], judge_out: dict[str, Any]
) -> pd.DataFrame:
    from emscope.report.judge_tables import outcome_of
    from emscope.sample.runner import latest_rows

    samples = latest_rows(JsonlStore(Path(sample_out["path"]), SampleRecord))
    scores = {r.key: r for r in JsonlStore(Path(judge_out["path"]), JudgeRecord)}
    records = []
    for s in samples:
        score = scores.get(s.key)
        records.append(
            {
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


def run_study(config: StudyConfig, run_dir: Path, console: Console | None = None) -> Path:
    return StudyRunner(config, run_dir, console).run()
