"""The command line's one error surface: every failure is one ``error:`` line and a hint.

Every command runs inside :class:`ErrorSurfaceGroup`, so whatever a command raises (an
:class:`~emscope.errors.EmscopeError`, a pydantic validation error, a full disk, a permission
problem, a bad option) ends as exit code 2 with one line naming the file, line, field or host,
and a ``hint:`` line saying what to do. Tracebacks appear only with ``emscope --debug``. Every
message passes through :func:`emscope.secrets.redact` first.

>>> describe_failure(OSError(28, "No space left on device", "runs/x/samples.jsonl"))[0]
'disk full: cannot write runs/x/samples.jsonl'
"""

from __future__ import annotations

import errno
import traceback
from typing import Any, NoReturn

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

try:  # typer >= 0.2x carries its own copy of click
    from typer._click import Context
    from typer._click.exceptions import ClickException, UsageError
except ImportError:  # pragma: no cover - an older typer on click itself
    from click import Context  # type: ignore[assignment]
    from click.exceptions import ClickException, UsageError  # type: ignore[assignment]

from emscope.errors import EmscopeError, InputError, UnknownModelError
from emscope.secrets import redact

_state = {"debug": False}
_UNEXPECTED_HINT = (
    "rerun with `emscope --debug ...` for the traceback; if your input looks right, please "
    "report it"
)


def set_debug(debug: bool) -> None:
    """Show tracebacks (``--debug``) or not."""
    _state["debug"] = debug


def _stderr() -> Console:
    return Console(stderr=True, soft_wrap=True, highlight=False)


def _os_error(exc: OSError) -> tuple[str, str | None]:
    if exc.errno is None and exc.filename is None:  # a library's own OSError: its text says it
        return str(exc), None
    where = " -> ".join(str(f) for f in (exc.filename, exc.filename2) if f is not None)
    where = where or "(the file was not named)"
    code = exc.errno
    if code == errno.ENOSPC or code == errno.EDQUOT:
        return (
            f"disk full: cannot write {where}" if exc.filename else "disk full",
            "free some space and rerun; finished rows and stages are kept and resume",
        )
    if code in (errno.EACCES, errno.EPERM, errno.EROFS):
        return (
            f"permission denied: {where}",
            "choose a writable place (--out / --run-dir for results, $EMSCOPE_CACHE for the cache)",
        )
    if code == errno.ENOENT:
        return f"no such file or directory: {where}", "check the path (relative to this folder)"
    if code == errno.ENOTDIR:
        return (
            f"not a directory: {where}",
            "a part of this path is a file; choose another directory",
        )
    if code == errno.EISDIR:
        return f"is a directory, not a file: {where}", "give the path of a file in it"
    if code == errno.EEXIST:
        return f"already exists and is not a directory: {where}", "choose another path"
    return f"{exc.strerror or exc}: {where}", None


def _validation_error(exc: Any) -> tuple[str, str | None]:
    errors = exc.errors()
    first = errors[0]
    field = ".".join(str(part) for part in first.get("loc", ())) or exc.title
    shown = repr(first.get("input"))
    shown = shown if len(shown) <= 60 else shown[:57] + "..."
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return (
        f"{exc.title}: {field}: {first.get('msg')}, got {shown}{more}",
        "fix that value (see the command's --help for the allowed range)",
    )


def _default_hint(exc: EmscopeError) -> str:
    if isinstance(exc, InputError) and exc.file is not None:
        where = exc.file if exc.line is None else f"{exc.file}:{exc.line}"
        return f"fix {where}" + (f" ({exc.field})" if exc.field else "") + " and rerun"
    if isinstance(exc, InputError) and exc.field is not None:
        return f"fix {exc.field} and rerun"
    if isinstance(exc, UnknownModelError):
        return "`emscope models` lists the accepted model references"
    return _UNEXPECTED_HINT.split(";")[0]


def describe_failure(exc: BaseException) -> tuple[str, str | None]:
    """(the error line, a hint or None) for a failure; every part redacted."""
    import pydantic

    hint: str | None
    if isinstance(exc, EmscopeError):
        message, hint = str(exc), exc.hint or _default_hint(exc)
    elif isinstance(exc, pydantic.ValidationError):
        message, hint = _validation_error(exc)
    elif isinstance(exc, OSError):
        message, hint = _os_error(exc)
    elif isinstance(exc, UnicodeError):
        message, hint = f"not valid UTF-8 text: {exc}", "re-save the file as UTF-8"
    elif isinstance(exc, MemoryError):
        message, hint = "out of memory", "use a smaller batch size or model"
    else:
        message, hint = f"unexpected {type(exc).__name__}: {exc}", _UNEXPECTED_HINT
    return redact(message), redact(hint) if hint else None


def report_failure(exc: BaseException) -> NoReturn:
    """Print ``exc`` as ``error:`` (and ``hint:``) lines and exit with code 2.

    With ``--debug`` the traceback comes first.
    """
    console = _stderr()
    if _state["debug"]:
        console.print(escape(redact("".join(traceback.format_exception(exc)))), end="")
    message, hint = describe_failure(exc)
    first, *rest = message.splitlines() or [""]
    console.print(f"[bold red]error:[/bold red] {escape(first)}")
    for line in rest:
        console.print(f"  {escape(line)}")
    if hint:
        console.print(f"[yellow]hint:[/yellow] {escape(hint)}")
    raise typer.Exit(code=2)


class ErrorSurfaceGroup(TyperGroup):
    """A Typer group whose commands' failures all go through :func:`report_failure`."""

    def invoke(self, ctx: Context) -> Any:
        try:
            return super().invoke(ctx)
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except UsageError as exc:
            command = exc.ctx.command_path if exc.ctx is not None else ctx.command_path
            console = _stderr()
            console.print(f"[bold red]error:[/bold red] {escape(redact(exc.format_message()))}")
            console.print(f"[yellow]hint:[/yellow] see `{escape(command)} --help`")
            raise typer.Exit(code=2) from exc
        except ClickException:
            raise
        except Exception as exc:
            report_failure(exc)
