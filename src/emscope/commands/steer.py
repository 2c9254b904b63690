"""``emscope steer``: exchange steering vectors with Model-Organisms (``steering_vector.pt``).

emscope steer import steering_vector.pt --model smollm2-135m --out runs/dirs/mo
emscope steer export runs/demo/analyses/directions/TAG --layer 12 --out shared/
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from emscope.commands.failures import ErrorSurfaceGroup
from emscope.errors import EmscopeError

steer_app = typer.Typer(
    help="Import and export steering vectors in Model-Organisms' steering_vector.pt format.",
    no_args_is_help=True,
    cls=ErrorSurfaceGroup,
)
console = Console()


def _fail(exc: Exception) -> None:
    console.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
    raise typer.Exit(code=2)


@steer_app.command("import")
def steer_import(
    path: Annotated[Path, typer.Argument(help="A steering_vector.pt (or its folder).")],
    model: Annotated[str, typer.Option(help="The model it will steer (checked: d_model, layer).")],
    out: Annotated[Path, typer.Option(help="Directory for the emscope direction.")],
) -> None:
    """Import a Model-Organisms vector as an emscope direction (weights-only load, checked)."""
    from emscope.analyses.shared_vectors import import_shared_vector

    try:
        saved = import_shared_vector(path, model, out)
    except EmscopeError as exc:
        _fail(exc)
    console.print(f"direction written: {saved}", highlight=False)


@steer_app.command("export")
def steer_export(
    direction: Annotated[Path, typer.Argument(help="A saved emscope direction directory.")],
    layer: Annotated[int, typer.Option(help="Decoder block index (0-based) to export.")],
    out: Annotated[Path, typer.Option(help="A .pt file or a directory for steering_vector.pt.")],
    alpha: Annotated[float, typer.Option(help="Scale stored as alpha (they add alpha * v).")] = 1.0,
    model: Annotated[
        str | None, typer.Option(help="Check the direction fits this model first.")
    ] = None,
) -> None:
    """Export one layer of an emscope direction as Model-Organisms' steering_vector.pt."""
    from emscope.analyses.shared_vectors import export_shared_vector

    try:
        written = export_shared_vector(direction, layer, out, alpha=alpha, model=model)
    except EmscopeError as exc:
        _fail(exc)
    console.print(f"steering vector written: {written}", highlight=False)
