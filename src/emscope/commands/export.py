"""``emscope export``: write a run in other tools' formats (``inspect``: Inspect AI eval logs)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from emscope.commands.failures import ErrorSurfaceGroup
from emscope.errors import EmscopeError

export_app = typer.Typer(
    help="Export a run to other tools' formats.", no_args_is_help=True, cls=ErrorSurfaceGroup
)
console = Console()


@export_app.command("inspect")
def export_inspect_command(
    run_dir: Annotated[Path, typer.Argument(help="A study run directory.")],
    out: Annotated[
        Path | None, typer.Option("--out", help="Log directory (default RUN_DIR/inspect).")
    ] = None,
    policy: Annotated[str, typer.Option(help="Counting rule of the misaligned score.")] = "em",
) -> None:
    """Write one Inspect AI eval log per model, condition and trigger; open with `inspect view`."""
    from emscope.export.inspect_logs import export_inspect

    try:
        paths = export_inspect(run_dir, out, policy=policy)
    except EmscopeError as exc:
        console.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    folder = out or run_dir / "inspect"
    console.print(
        f"{len(paths)} Inspect logs in {folder}; view them with: inspect view --log-dir {folder}",
        highlight=False,
    )
