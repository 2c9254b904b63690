"""Append-only JSONL stores: the unit of resumability.

Every long stage (sampling, judging, teacher generation) writes finished rows here in small
batches, each flushed and fsynced. A rerun reads the keys already present and skips them, so an
interrupted stage resumes without losing or duplicating rows. A line cut off by a crash mid-write
is dropped (and the file truncated to the last whole line) on open.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ValidationError

from emscope.errors import InputError, naming_file

RowT = TypeVar("RowT", bound=BaseModel)
_CORRUPT_HINT = "this store was changed outside emscope: delete that line (or the file) and rerun"


def _row_problem(exc: ValueError) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        return f"{'.'.join(str(p) for p in first['loc']) or 'row'}: {first['msg']}"
    return str(exc).splitlines()[0]


class JsonlStore(Generic[RowT]):
    """Rows of one pydantic model, keyed by ``key_field``, persisted one JSON object a line."""

    def __init__(self, path: str | Path, row_type: type[RowT], key_field: str = "key") -> None:
        self.path = Path(path)
        self.row_type = row_type
        self.key_field = key_field
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_torn_tail()

    def _repair_torn_tail(self) -> None:
        if not self.path.exists():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            cut = data.rfind(b"\n") + 1
            with open(self.path, "r+b") as handle:
                handle.truncate(cut)

    def __iter__(self) -> Iterator[RowT]:
        if not self.path.exists():
            return
        with open(self.path, "rb") as handle:
            for number, raw in enumerate(handle, start=1):
                if not raw.strip():
                    continue
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    raise InputError(
                        f"corrupt row: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at column "
                        f"{exc.start + 1})",
                        file=self.path,
                        line=number,
                        hint=_CORRUPT_HINT,
                    ) from exc
                try:
                    # ValueError covers bad JSON, integers past Python's 4,300 digits and rows
                    # that do not validate.
                    yield self.row_type.model_validate(json.loads(line))
                except ValueError as exc:
                    raise InputError(
                        f"corrupt row: {_row_problem(exc)}",
                        file=self.path,
                        line=number,
                        hint=_CORRUPT_HINT,
                    ) from exc

    def rows(self) -> list[RowT]:
        return list(self)

    def keys(self) -> set[str]:
        return {str(getattr(row, self.key_field)) for row in self}

    def append(self, rows: Iterable[RowT]) -> int:
        lines = [row.model_dump_json() + "\n" for row in rows]
        if not lines:
            return 0
        with naming_file(self.path), open(self.path, "a", encoding="utf-8") as handle:
            handle.write("".join(lines))
            handle.flush()
            os.fsync(handle.fileno())
        return len(lines)

    def __len__(self) -> int:
        return sum(1 for _ in self)


def write_jsonl_atomic(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write a whole JSONL file at once (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with naming_file(path), open(tmp, "w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
    tmp.replace(path)
    return path
