"""``emscope view RUN_DIR``: open a run's answers viewer in a browser, or serve it locally."""

from __future__ import annotations

import functools
import http.server
import threading
import webbrowser
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from emscope.errors import EmscopeError, InputError

console = Console()


def answers_page(run_dir: Path, *, rebuild: bool) -> Path:
    """The run's ``report/answers.html``, written first when missing or when ``rebuild``."""
    from emscope.report.answers_page import ANSWERS_FILE, write_answers_page

    page = run_dir / "report" / ANSWERS_FILE
    if rebuild or not page.is_file():
        if not (run_dir / "metrics" / "judged_rows.csv").is_file():
            raise InputError("not a run directory with judged answers", file=run_dir)
        summary = run_dir / "metrics" / "summary.csv"
        policy = "em"
        if summary.is_file():
            import pandas as pd

            policies = pd.read_csv(summary).get("policy")
            if policies is not None and len(policies.dropna()):
                policy = str(policies.dropna().iloc[0])
        page = write_answers_page(run_dir, policy=policy)
    return page


def serve(directory: Path, port: int = 0) -> http.server.ThreadingHTTPServer:
    """An HTTP server for ``directory`` on 127.0.0.1 (``port=0``: any free port), not started."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(directory))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def view_command(
    run_dir: Annotated[Path, typer.Argument(help="A study run directory.")],
    serve_page: Annotated[
        bool, typer.Option("--serve", help="Serve the report folder on 127.0.0.1.")
    ] = False,
    port: Annotated[int, typer.Option(help="Port for --serve (0: any free port).")] = 0,
    open_browser: Annotated[
        bool, typer.Option("--open/--no-open", help="Open the page in a browser.")
    ] = True,
    rebuild: Annotated[
        bool, typer.Option("--rebuild", help="Rewrite answers.html from the stored files first.")
    ] = False,
) -> None:
    """Open the answers viewer of RUN_DIR (report/answers.html; written first if missing)."""
    try:
        page = answers_page(run_dir, rebuild=rebuild)
    except EmscopeError as exc:
        console.print(f"[bold red]error:[/bold red] {escape(str(exc))}")
        raise typer.Exit(code=2) from exc
    if not serve_page:
        console.print(f"answers: {page}")
        if open_browser:
            webbrowser.open(page.resolve().as_uri())
        return
    server = serve(page.parent, port)
    url = f"http://127.0.0.1:{server.server_address[1]}/{page.name}"
    console.print(f"serving {page.parent} at {url} (Ctrl-C stops)", highlight=False)
    if open_browser:
        threading.Timer(0.5, webbrowser.open, args=(url,)).start()
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
