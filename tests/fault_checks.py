"""What the fault tests share: run the CLI in process, expect exactly one error line, and find
the files a secret leaked into."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from emscope.cli import app


def emscope(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def one_error(args: list[str], *expected: str, hint: bool = False) -> str:
    """Run ``emscope args``: exit 2, exactly one ``error:`` line holding ``expected``, no
    traceback (and, with ``hint``, a ``hint:`` line); returns the error line."""
    code, output = emscope(*args)
    errors = [line for line in output.splitlines() if line.startswith("error:")]
    assert code == 2, output
    assert len(errors) == 1, output
    assert "Traceback" not in output, output
    if hint:
        assert "hint:" in output, output
    for text in expected:
        assert text in errors[0], output
    return errors[0]


def files_holding(secret: str, *roots: Path) -> list[Path]:
    """Every file under ``roots`` whose bytes contain ``secret`` (SQLite databases included)."""
    return [
        path
        for root in roots
        for path in root.rglob("*")
        if path.is_file() and secret.encode() in path.read_bytes()
    ]
