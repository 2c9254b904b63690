"""Load a recipe's YAML data table (``recipes/tables/*.yaml``) into validated rows."""

from __future__ import annotations

import importlib.resources
from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from emscope.errors import InputError

Row = TypeVar("Row", bound=BaseModel)


def table_path(filename: str) -> Path:
    """Where the packaged table ``filename`` lives."""
    return Path(str(importlib.resources.files("emscope.data.recipes") / "tables" / filename))


def load_table(path: Path, model: type[Row]) -> tuple[Row, ...]:
    """The rows of the YAML list at ``path``, each validated as ``model``.

    A malformed table raises ``InputError`` naming the file and the row's index and field.
    """
    try:
        rows = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise InputError(f"not valid YAML: {error}", file=path, line=line) from None
    if not isinstance(rows, list):
        raise InputError("a recipe table must be a YAML list of rows", file=path)
    validated: list[Row] = []
    for index, row in enumerate(rows):
        try:
            validated.append(model.model_validate(row))
        except ValidationError as error:
            first = error.errors()[0]
            where = ".".join(str(part) for part in first["loc"])
            field = f"[{index}].{where}" if where else f"[{index}]"
            raise InputError(first["msg"], file=path, field=field) from None
    return tuple(validated)
