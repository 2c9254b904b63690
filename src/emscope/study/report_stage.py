"""The last step of a study: its metrics files, provenance, manifest and report.

``metrics/`` holds ``judged_rows.csv`` (one row per answer, with its family), ``summary.csv``
(one row per family and model), ``datasets.csv``, ``rejected.csv`` (fine-tunes a trainer
refused) and ``provenance.json``; :func:`render_run_report` rewrites the report from them alone.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from emscope.errors import InputError
from emscope.manifest import Manifest, write_manifest
from emscope.secrets import without_userinfo
from emscope.study.config import MetricsSection, stored_study
from emscope.study.context import RunContext
from emscope.study.execution import ModelJobResult
from emscope.study.plan import ModelJob

if TYPE_CHECKING:
    from emscope.report.render import ReportSection

METRICS_DIR = "metrics"


def write_run_report(
    ctx: RunContext,
    jobs: Sequence[ModelJob],
    results: Sequence[ModelJobResult],
    rows: pd.DataFrame,
    sections: list[ReportSection] | None,
) -> Path:
    """Write the metrics, the provenance and the report of a run; returns the HTML path."""
    metrics_dir = ctx.run_dir / METRICS_DIR
    metrics_dir.mkdir(parents=True, exist_ok=True)
    rows.to_csv(metrics_dir / "judged_rows.csv", index=False)
    datasets_table(ctx, jobs, results).to_csv(metrics_dir / "datasets.csv", index=False)
    rejected = [
        {"family": job.family, "model": job.model, "seed": job.seed, "reason": result.rejected}
        for job, result in zip(jobs, results, strict=True)
        if result.rejected
    ]
    pd.DataFrame(rejected, columns=["family", "model", "seed", "reason"]).to_csv(
        metrics_dir / "rejected.csv", index=False
    )
    from emscope.judge.bridge import describe_judge
    from emscope.sample.question_prompts import prompt_provenance

    judge = ctx.judge_built
    provenance = {
        "study": stored_study(ctx.config),
        "families": {
            name: {
                "model": str(f.ref),
                "trainer": f.trainer.name,
                "engine": without_userinfo(f.engine),
                "shared_engine": f.shared,
            }
            for name, f in ctx.families.items()
        },
        "adapter_checks": adapter_checks(jobs, results),
        "judge": judge.identity if judge else _ledger_judge(ctx),
        "judge_fingerprint": judge.fingerprint() if judge else None,
        "judge_prompts": prompt_provenance(ctx.judge_prompt_sets),
        "judge_info": describe_judge(judge) if judge else None,
        # What each kind of stage took when it ran (kept by an all-cached rerun) and this run.
        "stage_seconds": {k: round(v, 1) for k, v in ctx.ledger.recorded_seconds().items()},
        "stage_seconds_this_run": {k: round(v, 1) for k, v in ctx.ledger.timings.items()},
        "libraries": Manifest(kind="probe").libraries,
    }
    (metrics_dir / "provenance.json").write_text(
        json.dumps(provenance, indent=2, default=str), encoding="utf-8"
    )
    report = render_run_report(ctx.run_dir, sections)
    write_manifest(
        ctx.run_dir,
        Manifest(
            kind="study-run",
            config=stored_study(ctx.config),
            inputs={k: v["input_hash"] for k, v in ctx.ledger.entries.items()},
            outputs={
                "report": ctx.stored(report),
                "stage_seconds": ctx.ledger.recorded_seconds(),
                "stage_seconds_this_run": ctx.ledger.timings,
                "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            },
        ),
    )
    ctx.say(f"[bold]report:[/bold] {report}")
    return report


def adapter_checks(
    jobs: Sequence[ModelJob], results: Sequence[ModelJobResult]
) -> dict[str, dict[str, Any]]:
    """Per sample file checked by a shared engine: the "adapter is live" numbers and reference."""
    checks = {}
    for job, result in zip(jobs, results, strict=True):
        for samples, triggered in result.samples:
            if samples.sampler.get("liveness"):
                checks[f"{job.tag}.{'T' if triggered else 'N'}"] = {
                    **samples.sampler["liveness"],
                    "reference": samples.sampler.get("liveness_reference"),
                }
    return checks


def datasets_table(
    ctx: RunContext, jobs: Sequence[ModelJob], results: Sequence[ModelJobResult]
) -> pd.DataFrame:
    """One row per dataset (shared by the families): size, source, diversity, hash."""
    seen: dict[str, dict[str, object]] = {}
    for job, result in zip(jobs, results, strict=True):
        info = result.dataset
        if info is None or job.dataset_tag in seen:
            continue
        seen[job.dataset_tag] = {
            "dataset": job.dataset_tag,
            "rows": info.rows,
            "source": info.source,
            "user Vendi (q=1)": info.user_vendi_1,
            "answer Vendi (q=1)": info.assistant_vendi_1,
            "answer 1-mean cos": info.assistant_pairwise,
            "sha256": info.sha256[:12],
        }
    return pd.DataFrame(list(seen.values()))


def _ledger_judge(ctx: RunContext) -> str | None:
    for name, entry in ctx.ledger.entries.items():
        if name.startswith("judge:"):
            return str(entry.get("output", {}).get("judge"))
    return None


def render_run_report(run_dir: Path, sections: list[ReportSection] | None = None) -> Path:
    """(Re)write the report of a run from what the run stored on disk; returns the HTML path.

    ``sections`` defaults to the analysis sections the run stored (``analyses/sections.json``).
    """
    from emscope.metrics.trigger import summarize
    from emscope.report.answers_page import write_answers_page
    from emscope.report.families import families_side_by_side
    from emscope.report.render import write_report
    from emscope.report.sections import analysis_sections
    from emscope.report.uncertainty import misalign_at_k_table

    metrics_dir = run_dir / METRICS_DIR
    rows_path = metrics_dir / "judged_rows.csv"
    if not rows_path.exists() or rows_path.stat().st_size <= 1:
        raise InputError("no judged rows yet: run the study first", file=rows_path)
    rows = pd.read_csv(rows_path)
    provenance = json.loads((metrics_dir / "provenance.json").read_text(encoding="utf-8"))
    study = provenance.get("study") or {}
    # The counting rule and resample count are the study's own (metrics:), also on a re-render.
    metrics = MetricsSection.model_validate(study.get("metrics") or {})
    summary = summarize(rows, policy=metrics.policy, n_resamples=metrics.bootstrap_resamples)
    summary.to_csv(metrics_dir / "summary.csv", index=False)
    extra: dict[str, pd.DataFrame] = {}
    at_k = misalign_at_k_table(summary)
    if at_k is not None:
        extra[
            "Misalign@k: chance that at least one of k answers to a question is misaligned "
            "(untriggered, mean over questions; a dash where the samples per question do not "
            "allow k)"
        ] = at_k
    side_by_side = families_side_by_side(summary)
    if side_by_side is not None:
        extra["Model families side by side (misalignment rate [95% CI])"] = side_by_side
        side_by_side.to_csv(metrics_dir / "families.csv", index=False)
    for title, name in (("Datasets", "datasets.csv"), ("Rejected fine-tunes", "rejected.csv")):
        path = metrics_dir / name
        if path.exists() and path.stat().st_size > 1:
            table = pd.read_csv(path)
            if len(table):
                extra[title] = table
    extra.update(_judge_tables(rows, provenance))
    if sections is None:
        sections = analysis_sections(run_dir)
    bridge_path = (study.get("judge") or {}).get("calibration")
    if bridge_path:
        from emscope.report.bridge_section import bridged_rates_section

        bridged = bridged_rates_section(
            rows,
            summary,
            provenance.get("judge"),
            bridge_path,
            metrics_dir,
            policy=metrics.policy,
            n_resamples=metrics.bootstrap_resamples,
        )
        sections = [*sections, bridged]
    answers = write_answers_page(run_dir, policy=str(summary["policy"].iloc[0]))
    html, _markdown = write_report(
        run_dir,
        summary,
        provenance=provenance,
        extra_tables=extra or None,
        sections=sections,
        answers_page=answers.name,
    )
    return html


def _judge_tables(rows: pd.DataFrame, provenance: dict[str, Any]) -> dict[str, pd.DataFrame]:
    """The prompt sets the answers were judged with, and replies that carried no score."""
    from emscope.report.judge_tables import judge_outcome_table, prompt_sets_table

    tables = {}
    if provenance.get("judge_prompts"):
        tables["Judge prompts (origin and sha256 of the templates sent)"] = prompt_sets_table(
            provenance["judge_prompts"]
        )
    outcomes = judge_outcome_table(rows)
    if outcomes is not None:
        tables["Judge replies without a score (excluded from rates)"] = outcomes
    return tables
