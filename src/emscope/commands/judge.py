"""``emscope judge``: calibrate a judge against reference labels, or compare judges on a run.

    emscope judge calibrate --judge offline --labels ../shared/data/em-judged --limit 500
    emscope judge compare runs/demo --judge offline --judge logprob:gpt-4o-2024-08-06

Judge specs: see :data:`emscope.judge.registry.JUDGE_SPEC_FORMS`. Every judge runs behind the
SQLite score cache unless ``--no-cache`` is given, so a second calibration or comparison costs
nothing. ``compare`` judges each answer with its question's judge prompts from the run's
question file; ``--prompts FILE`` forces one prompt set (a mapping ``{aligned, coherent}`` or a
question file, whose first entry's prompts are used). Before judging, API judges' models are
checked for a provider shutdown date (warning before it, error after).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import Progress as RichProgress
from rich.table import Table

from emscope.errors import EmscopeError
from emscope.judge.base import Judge
from emscope.judge.cache import JudgeCache
from emscope.judge.registry import judge_spec_help

judge_app = typer.Typer(
    help="Calibrate judges against reference scores and compare judges on a run.",
    no_args_is_help=True,
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


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/bold red] {exc}")
    raise typer.Exit(code=2)


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


@judge_app.command()
def calibrate(
    judge: JudgeOption,
    labels: Annotated[
        Path,
        typer.Option(
            help="Labels CSV/JSONL (question, answer, aligned[, coherent]) or a directory of them."
        ),
    ],
    limit: Annotated[
        int | None, typer.Option(help="Judge a seeded random subset of N rows.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the --limit subset.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Also write the report as JSON here.")] = None,
    no_cache: NoCache = False,
    prompts: PromptsOption = None,
    judge_max_tokens: MaxTokensOption = None,
) -> None:
    """Agreement of a judge with reference scores: AUC, Spearman, kappa, confusion table."""
    from emscope.judge.agreement import calibrate as run_calibration
    from emscope.sample.question_prompts import forced_judge_prompts

    try:
        forced = forced_judge_prompts(prompts) if prompts else None
        with (
            _judges([judge], no_cache, judge_max_tokens) as (the_judge,),
            RichProgress(console=console) as bar,
        ):
            task = bar.add_task("judging", total=None)
            report = run_calibration(
                the_judge,
                labels,
                limit=limit,
                seed=seed,
                prompts=forced,
                progress=lambda done, total: bar.update(task, completed=done, total=total),
            )
    except (EmscopeError, RuntimeError) as exc:
        _fail(exc)
    stats = Table("statistic", "value", title=report.judge, caption=f"labels: {report.labels}")
    for name, value in (
        ("misaligned AUC", _fmt(report.auc)),
        ("aligned Spearman", _fmt(report.aligned_spearman)),
        ("coherent Spearman", _fmt(report.coherent_spearman)),
        (f"Cohen's kappa (aligned < {report.misaligned_below:g})", _fmt(report.kappa)),
        ("rows evaluated / in file", f"{report.n_evaluated} / {report.n_rows}"),
        ("reference misaligned", str(report.n_reference_misaligned)),
        ("judge misaligned", str(report.n_judge_misaligned)),
        ("reference aligned None", str(report.n_reference_aligned_none)),
        ("reference coherent None", str(report.n_reference_coherent_none)),
        ("reference incoherent (dropped)", str(report.n_reference_incoherent)),
        ("judge aligned None", str(report.n_judge_aligned_none)),
        ("  of which reference misaligned", str(report.n_judge_aligned_none_reference_misaligned)),
        ("judge coherent None", str(report.n_judge_coherent_none)),
    ):
        stats.add_row(name, value)
    console.print(stats)
    confusion = Table("reference \\ judge", "misaligned", "not misaligned", title="confusion")
    c = report.confusion
    confusion.add_row("misaligned", str(c.both_misaligned), str(c.reference_only))
    confusion.add_row("not misaligned", str(c.judge_only), str(c.neither))
    console.print(confusion)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.model_dump_json(indent=2) + "\n", encoding="utf-8")
        console.print(f"report: {out}")


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
