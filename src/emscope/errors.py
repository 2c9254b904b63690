"""Errors that name where bad input is, so a researcher can fix it without a debugger."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class EmscopeError(Exception):
    """Base class of every error emscope raises on purpose.

    ``hint`` says what to do about it; the command line prints it on its own line.
    """

    hint: str | None = None

    def __init__(self, *args: object, hint: str | None = None) -> None:
        super().__init__(*args)
        if hint is not None:
            self.hint = hint


class InputError(EmscopeError):
    """Bad user input, located by file, line and field where known.

    >>> str(InputError("empty content", file="d.jsonl", line=3, field="messages[1].content"))
    'd.jsonl:3: messages[1].content: empty content'
    """

    def __init__(
        self,
        message: str,
        *,
        file: str | Path | None = None,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = str(file) if file is not None else None
        self.line = line
        self.field = field
        super().__init__(self.location_prefix() + message, hint=hint)

    def location_prefix(self) -> str:
        parts: list[str] = []
        if self.file is not None:
            parts.append(self.file if self.line is None else f"{self.file}:{self.line}")
        if self.field is not None:
            parts.append(self.field)
        return "".join(f"{p}: " for p in parts)


class UnknownModelError(EmscopeError):
    """A model reference that is neither an alias, a path, a hub id nor an API model."""


class ModelJobsFailed(EmscopeError):
    """Models of a study whose stages failed on an execution backend, by job tag.

    Raised once every other model has finished; their stages are kept, so a rerun resumes.
    """

    def __init__(self, failures: dict[str, str]) -> None:
        self.failures = failures
        lines = "".join(f"\n  {tag}: {error}" for tag, error in failures.items())
        super().__init__(
            f"{len(failures)} model job(s) failed; the other models' stages are kept, "
            f"rerun to resume:{lines}"
        )


@contextmanager
def naming_file(path: str | Path) -> Iterator[None]:
    """Give an ``OSError`` raised inside (a full disk on flush) the file it was writing."""
    try:
        yield
    except OSError as exc:
        if exc.filename is None:
            exc.filename = str(path)
        raise
