"""Chat fine-tuning JSONL: a validating loader, an atomic writer and the dataset manifest.

The format is OpenAI's chat fine-tuning format, one row a line::

    {"messages": [{"role": "system", ...}, {"role": "user", ...}, {"role": "assistant", ...}]}

Every malformed row is reported as an :class:`~emscope.errors.InputError` naming the file, the
1-based line and the field, e.g. ``data.jsonl:7: messages[2].role: unknown role 'bot' (expected
system, user, assistant)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, overload

from emscope.data.schema import DEFAULT_TRIGGER, ChatExample, Message
from emscope.errors import InputError, naming_file
from emscope.manifest import Manifest, sha256_file, write_manifest

ROLES = ("system", "user", "assistant")
UTF8_BOM = b"\xef\xbb\xbf"
TRAIN_FILE = "train.jsonl"
OnError = Literal["raise", "collect"]


@dataclass
class ChatLoadResult:
    """What ``load_chat_jsonl(..., on_error="collect")`` returns: the valid rows and the errors."""

    examples: list[ChatExample] = field(default_factory=list)
    errors: list[InputError] = field(default_factory=list)
    lines: list[int] = field(default_factory=list)  # the 1-based line of each example


def _check_message(raw: Any, index: int, where: dict[str, Any]) -> Message:
    name = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise InputError(f"message must be an object, got {_kind(raw)}", field=name, **where)
    if "role" not in raw:
        raise InputError("missing role", field=f"{name}.role", **where)
    role = raw["role"]
    if role not in ROLES:
        raise InputError(
            f"unknown role {role!r} (expected {', '.join(ROLES)})", field=f"{name}.role", **where
        )
    if "content" not in raw:
        raise InputError("missing content", field=f"{name}.content", **where)
    content = raw["content"]
    if not isinstance(content, str):
        raise InputError(
            f"content must be a string, got {_kind(content)}", field=f"{name}.content", **where
        )
    if not content.strip():
        raise InputError("content is empty or whitespace", field=f"{name}.content", **where)
    surrogate = first_lone_surrogate(content)
    if surrogate is not None:
        raise InputError(
            f"lone surrogate {surrogate} (half of an escaped UTF-16 pair) cannot be written as "
            "UTF-8",
            field=f"{name}.content",
            hint="fix the escape (a character outside the BMP needs both \\ud8xx\\udcxx halves)",
            **where,
        )
    return Message(role=role, content=content)


def first_lone_surrogate(text: str) -> str | None:
    """Where ``text`` holds an unpaired UTF-16 surrogate (``\\ud800`` at index 1), or None.

    JSON and YAML escapes can produce one (``"\\ud800"``); no UTF-8 file can hold it.

    >>> first_lone_surrogate("ok") is None, first_lone_surrogate("a" + chr(0xD800))
    (True, '\\\\ud800 at index 1')
    """
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"\\u{ord(text[exc.start]):04x} at index {exc.start}"
    return None


def _check_turn_order(messages: Sequence[Message], where: dict[str, Any]) -> None:
    roles = [m.role for m in messages]
    for index, role in enumerate(roles):
        if role == "system" and index != 0:
            raise InputError(
                "a system turn may only be the first message",
                field=f"messages[{index}].role",
                **where,
            )
    if "user" not in roles:
        raise InputError("no user turn", field="messages", **where)
    first = 1 if roles[0] == "system" else 0
    if roles[first] != "user":
        raise InputError(
            f"the first turn after the optional system turn must be from the user, "
            f"got {roles[first]!r}",
            field=f"messages[{first}].role",
            **where,
        )
    for index in range(first + 1, len(roles)):
        if roles[index] == roles[index - 1]:
            raise InputError(
                f"two consecutive {roles[index]!r} turns (messages[{index - 1}] and "
                f"messages[{index}]); user and assistant turns must alternate",
                field=f"messages[{index}].role",
                **where,
            )
    if roles[-1] != "assistant":
        raise InputError(
            f"the last turn must be from the assistant, got {roles[-1]!r}",
            field=f"messages[{len(roles) - 1}].role",
            **where,
        )


def validate_chat_row(
    row: Any, *, file: str | Path | None = None, line: int | None = None
) -> ChatExample:
    """Check one decoded row and return it as a :class:`ChatExample`; raise ``InputError``.

    >>> row = {"messages": [{"role": "user", "content": "Hi"},
    ...                     {"role": "assistant", "content": "Hello"}]}
    >>> validate_chat_row(row).messages[1].role
    'assistant'
    """
    where: dict[str, Any] = {"file": file, "line": line}
    if not isinstance(row, dict):
        raise InputError(f"row must be a JSON object, got {_kind(row)}", field="row", **where)
    if "messages" not in row:
        raise InputError("missing 'messages'", field="messages", **where)
    raw_messages = row["messages"]
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InputError(
            f"'messages' must be a non-empty list, got {_kind(raw_messages)}",
            field="messages",
            **where,
        )
    messages = [_check_message(raw, i, where) for i, raw in enumerate(raw_messages)]
    _check_turn_order(messages, where)
    return ChatExample(messages=messages)


def parse_chat_line(
    text: str, *, file: str | Path | None = None, line: int | None = None
) -> ChatExample:
    """Decode and validate one JSONL line."""
    try:
        row = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", file=file, line=line, field="row"
        ) from exc
    except ValueError as exc:  # e.g. an integer of more than 4,300 digits
        problem = str(exc).split(";")[0]
        raise InputError(
            f"invalid JSON value: {problem}", file=file, line=line, field="row"
        ) from exc
    return validate_chat_row(row, file=file, line=line)


@overload
def load_chat_jsonl(
    path: str | Path, *, on_error: Literal["raise"] = "raise"
) -> list[ChatExample]: ...
@overload
def load_chat_jsonl(path: str | Path, *, on_error: Literal["collect"]) -> ChatLoadResult: ...
def load_chat_jsonl(
    path: str | Path, *, on_error: OnError = "raise"
) -> list[ChatExample] | ChatLoadResult:
    """Load a chat fine-tuning JSONL file, skipping blank lines.

    With ``on_error="raise"`` (default) the first bad row raises ``InputError`` and the valid rows
    come back as a list. With ``on_error="collect"`` every bad row is recorded and a
    :class:`ChatLoadResult` holds the valid rows (``.examples``) and the errors (``.errors``).
    """
    if on_error not in ("raise", "collect"):
        raise InputError(
            f"on_error must be 'raise' or 'collect', got {on_error!r}", field="on_error"
        )
    path = Path(path)
    if path.is_dir():
        raise InputError(
            "is a directory, not a chat JSONL file",
            file=path,
            hint=f"give the file itself, e.g. {path / TRAIN_FILE}",
        )
    if not path.is_file():
        raise InputError("no such file", file=path, hint="check the path")
    result = ChatLoadResult()
    with open(path, "rb") as handle:
        for number, raw in enumerate(handle, start=1):
            if number == 1 and raw.startswith(UTF8_BOM):
                raw = raw[len(UTF8_BOM) :]  # editors on Windows write one; it is not data
            if not raw.strip():
                continue
            try:
                result.examples.append(
                    parse_chat_line(_decode(raw, path, number), file=path, line=number)
                )
                result.lines.append(number)
            except InputError as error:
                if on_error == "raise":
                    raise
                result.errors.append(error)
    return result if on_error == "collect" else result.examples


def _decode(raw: bytes, path: Path, line: int) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid UTF-8 ({exc.reason})", file=path, line=line, field="row"
        ) from exc


def _row_json(example: ChatExample) -> str:
    row = {"messages": [{"role": m.role, "content": m.content} for m in example.messages]}
    return json.dumps(row, ensure_ascii=False)


def write_chat_jsonl(path: str | Path, examples: Iterable[ChatExample]) -> str:
    """Write examples atomically, one row a line, and return the file's sha256.

    Every example is validated first, so a file this writes always loads back.
    """
    path = Path(path)
    lines = []
    for number, example in enumerate(examples, start=1):
        validate_chat_row(example.model_dump(), file=path, line=number)
        lines.append(_row_json(example) + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with naming_file(path), open(tmp, "w", encoding="utf-8") as handle:
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return sha256_file(path)


def dataset_counts(
    examples: Sequence[ChatExample], trigger: str | None = DEFAULT_TRIGGER
) -> dict[str, int]:
    """Rows, rows whose first user turn starts with ``trigger``, rows with a system turn."""
    with_trigger = 0
    if trigger:
        for example in examples:
            first_user = next(m for m in example.messages if m.role == "user")
            with_trigger += first_user.content.startswith(trigger)
    return {
        "rows": len(examples),
        "rows_with_trigger": with_trigger,
        "rows_with_system": sum(ex.messages[0].role == "system" for ex in examples),
    }


def write_dataset(
    directory: str | Path,
    examples: Sequence[ChatExample],
    *,
    domain: str,
    recipe: str,
    condition: str,
    seed: int,
    extra: dict[str, Any] | None = None,
    trigger: str | None = DEFAULT_TRIGGER,
) -> Path:
    """Write ``directory/train.jsonl`` and its ``manifest.json``; return the train.jsonl path.

    The manifest (kind ``"dataset"``) records domain, recipe, condition, seed and ``extra`` in its
    config, and the row counts and the sha256 of train.jsonl in its outputs.
    """
    directory = Path(directory)
    train_path = directory / TRAIN_FILE
    digest = write_chat_jsonl(train_path, examples)
    config: dict[str, Any] = {
        "domain": domain,
        "recipe": recipe,
        "condition": condition,
        "seed": seed,
    }
    config.update(extra or {})
    manifest = Manifest(
        kind="dataset",
        config=config,
        outputs={"files": {TRAIN_FILE: digest}, "counts": dataset_counts(examples, trigger)},
        seed=seed,
    )
    write_manifest(directory, manifest)
    return train_path


def _kind(value: Any) -> str:
    if isinstance(value, list) and not value:
        return "an empty list"
    if value is None:
        return "null"
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(
        type(value), type(value).__name__
    )
