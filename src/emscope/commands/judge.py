"""``emscope judge``: calibrate a judge against reference labels, or compare judges on a run.

    emscope judge calibrate --judge offline --labels ../shared/data/em-judged --limit 500
    emscope judge calibrate --judge offline --labels DIR --fit bridge.json --hold-out 'more/*'
    emscope judge compare runs/demo --judge offline --judge logprob:gpt-4o-2024-08-06

Judge specs: see :data:`emscope.judge.registry.JUDGE_SPEC_FORMS`. Every judge runs behind the
SQLite score cache unless ``--no-cache`` is given, so a second calibration or comparison costs
nothing. ``compare`` judges each answer with its question's judge prompts from the run's
question file; ``--prompts FILE`` forces one prompt set (a mapping ``{aligned, coherent}`` or a
question file, whose first entry's prompts are used). Before judging, API judges' models are
checked for a provider shutdown date (warning before it, error after).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.table import Table

from emscope.commands.failures import ErrorSurfaceGroup, report_failure
from emscope.errors import EmscopeError, InputError
from emscope.judge.base import Judge
from emscope.judge.cache import JudgeCache
from emscope.judge.registry import judge_spec_help

if TYPE_CHECKING:
    from emscope.judge.agreement import CalibrationReport
    from emscope.judge.calibration import CalibrationTable

judge_app = typer.Typer(
    help="Calibrate judges against reference scores and compare judges on a run.",
    no_args_is_help=True,
    cls=ErrorSurfaceGroup,
)
console = Console()

JudgeOption = Annotated[str, typer.Option("--judge", help=judge_spec_help())]
NoCache = Annotated[bool, typer.Option("--no-cache", help="Do not read or write the score cache.")]
PromptsOption = Annotated[
    Path | None,
    typer.Option(
        "--prompts",
        help="Judge prompt file for every answer: a YAML mapping {aligned, coherent} or a "
        "question file (its first entry's judge_prompts).",
    ),
]
MaxTokensOption = Annotated[
    int | None,
    typer.Option(
        "--judge-max-tokens", min=1, help="Reply budget of text judges (tagged; default 1024)."
    ),
]
TABLE_WIDTH = 180  # the per-file table has 12 columns; wider than a terminal beats folded cells


def _fail(exc: Exception) -> None:
    report_failure(exc)


@contextmanager
def _judges(
    specs: list[str], no_cache: bool, max_tokens: int | None = None
) -> Iterator[list[Judge]]:
    from emscope.judge.registry import JudgeOptions, make_judge_from_spec
    from emscope.judge.shutdown import check_judge_specs

    for warning in check_judge_specs(specs):
        console.print(f"[bold yellow]warning:[/bold yellow] {warning}")
    cache = None if no_cache else JudgeCache()
    options = JudgeOptions(max_tokens=max_tokens)
    try:
        yield [make_judge_from_spec(spec, cache=cache, options=options) for spec in specs]
    finally:
        if cache is not None:
            console.print(f"score cache: {cache.hits} hit(s), {cache.misses} miss(es)")
            cache.close()


def _fmt(value: float | None, digits: int = 3) -> str:
    return "-" if value is None or value != value else f"{value:.{digits}f}"


def _print_table(table: CalibrationTable, title: str) -> None:
    from emscope.judge.calibration import table_frame

    frame = table_frame(table)
    grid = Table(title=title, caption=f"policy: {table.policy}")
    for name in frame.columns:
        grid.add_column(name, overflow="fold", no_wrap=name != "file")
    for record in frame.itertuples(index=False):
        cells = []
        for name, value in zip(frame.columns, record, strict=True):
            if name in ("file", "n", "ref misaligned"):
                cells.append(str(value))
            elif name in ("false flags", "recall", "ref rate", "judge rate"):
                cells.append("-" if value is None or value != value else f"{100 * value:.1f}%")
            elif name == "difference (points)":
                cells.append("-" if value is None or value != value else f"{value:+.1f}")
            else:
                cells.append(_fmt(value))
        grid.add_row(*cells)
    Console(width=max(console.width, TABLE_WIDTH)).print(grid)


def _print_exclusions(report: CalibrationReport) -> None:
    stats = Table("pooled counts", "value", title="denominators and exclusions")
    for name, value in (
        ("rows evaluated (reference keeps) / in files", f"{report.n_evaluated} / {report.n_rows}"),
        ("reference aligned None", report.n_reference_aligned_none),
        ("reference coherent None", report.n_reference_coherent_none),
        ("reference incoherent (dropped)", report.n_reference_incoherent),
        ("judge aligned None among evaluated", report.n_judge_aligned_none),
        ("  of which reference misaligned", report.n_judge_aligned_none_reference_misaligned),
        ("judge coherent None", report.n_judge_coherent_none),
        ("judge misaligned among evaluated", report.n_judge_misaligned),
    ):
        stats.add_row(name, str(value))
    c = report.confusion
    stats.add_row("confusion: both / reference only", f"{c.both_misaligned} / {c.reference_only}")
    stats.add_row("confusion: judge only / neither", f"{c.judge_only} / {c.neither}")
    console.print(stats)


def _held_out_sources(sources: list[str], patterns: list[str], seed: int) -> list[str]:
    """Sources matching any pattern (glob or exact); by default a seeded third of the files."""
    import fnmatch

    import numpy as np

    if patterns:
        picked = [s for s in sources if any(fnmatch.fnmatch(s, p) for p in patterns)]
        if not picked:
            raise InputError(f"--hold-out {patterns} matches none of {', '.join(sources)}")
        return picked
    if len(sources) < 2:
        raise InputError("--fit needs two or more labels files: some to fit on, some to hold out")
    count = max(1, len(sources) // 3)
    order = np.random.default_rng(seed).permutation(len(sources))
    return sorted(sources[i] for i in order[:count])


@judge_app.command()
def calibrate(
    judge: JudgeOption,
    labels: Annotated[
        Path,
        typer.Option(
            help="Labels CSV/JSONL (question, answer, aligned[, coherent]) or a folder of them "
            "(read recursively)."
        ),
    ],
    policy: Annotated[
        str, typer.Option(help="Counting rule: em | model_organisms | domain_paper.")
    ] = "em",
    limit: Annotated[
        int | None, typer.Option(help="Judge a seeded random subset of N rows.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --limit subset and default hold-out.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the table as JSON here.")] = None,
    fit: Annotated[
        Path | None,
        typer.Option(help="Fit a bridge to the labels' scale and write it (JSON) here."),
    ] = None,
    hold_out: Annotated[
        list[str] | None,
        typer.Option(
            "--hold-out",
            help="With --fit: labels file(s) to measure the bridge on, not fit it (glob on the "
            "path under --labels, repeatable; default: a seeded third of the files).",
        ),
    ] = None,
    method: Annotated[
        str, typer.Option(help="With --fit: isotonic-equipercentile | isotonic-regression.")
    ] = "isotonic-equipercentile",
    no_cache: NoCache = False,
    prompts: PromptsOption = None,
    judge_max_tokens: MaxTokensOption = None,
) -> None:
    """Agreement of a judge with reference scores, per labels file and pooled; optionally a bridge.

    "Misaligned" is the --policy rule applied to each judge's own aligned and coherent scores,
    as in a study's rates.
    """
    from emscope.judge.bridge import METHODS, describe_judge, fit_bridge, write_bridge
    from emscope.judge.calibration import calibration_table, score_labels
    from emscope.metrics.rates import get_policy
    from emscope.sample.question_prompts import forced_judge_prompts

    try:
        get_policy(policy)
        if method not in METHODS:
            raise InputError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")
        forced = forced_judge_prompts(prompts) if prompts else None
        with (
            _judges([judge], no_cache, judge_max_tokens) as (the_judge,),
            RichProgress(console=console) as bar,
        ):
            task = bar.add_task("judging", total=None)
            scored = score_labels(
                the_judge,
                labels,
                limit=limit,
                seed=seed,
                prompts=forced,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
            description = describe_judge(the_judge)
            bridge = None
            if fit is not None:
                sources = sorted(set(scored["source"]))
                held = _held_out_sources(sources, hold_out or [], seed)
                bridge = fit_bridge(
                    scored,
                    held,
                    judge=the_judge,
                    policy=policy,
                    method=method,
                )
    except (EmscopeError, RuntimeError) as exc:
        _fail(exc)
    table = calibration_table(scored, judge=the_judge.identity, policy=policy, labels=str(labels))
    _print_table(table, f"{table.judge} against {labels}")
    _print_exclusions(table.pooled)
    if description.get("info"):
        info = json.dumps(description["info"], default=str)
        console.print(f"judge info: {info[:2000]}", markup=False, highlight=False)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        payload = {"judge": description, "table": table.model_dump()}
        out.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
        console.print(f"report: {out}")
    if bridge is not None and fit is not None:
        write_bridge(bridge, fit)
        console.print(
            f"bridge ({bridge.method}) fitted on {len(bridge.fitted_on)} file(s), held out: "
            + ", ".join(f.source for f in bridge.held_out)
        )
        _print_table(bridge.agreement["held_out_raw"], "held-out files, raw scores")
        _print_table(bridge.agreement["held_out_bridged"], "held-out files, bridged scores")
        console.print(f"bridge: {fit}")


@judge_app.command()
def compare(
    run_dir: Annotated[
        Path, typer.Argument(help="A study run directory (with metrics/judged_rows.csv).")
    ],
    judge: Annotated[
        list[str],
        typer.Option(
            "--judge",
            help="Judge spec, repeatable (forms as in calibrate --judge).",
        ),
    ],
    no_cache: NoCache = False,
    prompts: PromptsOption = None,
    judge_max_tokens: MaxTokensOption = None,
) -> None:
    """Re-score a run's answers with several judges; print each judge's EM misalignment rate.

    Each answer is judged with its question's prompts from the run's question file, unless
    ``--prompts`` forces one prompt set.
    """
    from emscope.judge import compare as comparison

    try:
        with (
            _judges(judge, no_cache, judge_max_tokens) as judges,
            RichProgress(console=console) as bar,
        ):
            prompt_sets = comparison.run_prompt_sets(run_dir, prompts)
            labels = comparison.judge_labels(judges)
            rows = comparison.read_judged_rows(run_dir)
            task = bar.add_task("judging", total=None)
            frame = comparison.rescore_rows(
                rows,
                judges,
                labels,
                prompt_sets=prompt_sets,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
        rates = comparison.judge_rates(frame, [comparison.RUN_LABEL, *labels])
        paths = comparison.write_comparison(run_dir, frame, rates, judges, labels)
    except (EmscopeError, RuntimeError) as exc:
        _fail(exc)
    table = Table(title="misalignment rate by judge (EM rule)")
    table.add_column("judge", overflow="fold")
    table.add_column("model", overflow="fold")
    for name in ("trigger", "rate", "95% CI", "n", "misaligned", "excluded"):
        table.add_column(name, no_wrap=True)
    for row in rates.itertuples(index=False):
        excluded = row.n_rows - row.n
        table.add_row(
            str(row.judge),
            str(row.model),
            "yes" if row.triggered else "no",
            _fmt(row.rate),
            f"{_fmt(row.ci_low)}-{_fmt(row.ci_high)}",
            str(row.n),
            str(row.n_misaligned),
            str(excluded),
        )
    console.print(table)
    console.print(f"scores: {paths['rows']}\nrates: {paths['rates']}")
