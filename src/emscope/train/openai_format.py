"""OpenAI's chat fine-tuning format rules, checked before anything is uploaded (or paid for).

A training file is JSONL, one example a line::

    {"messages": [{"role": "system", "content": "..."},
                  {"role": "user", "content": "..."},
                  {"role": "assistant", "content": "...", "weight": 1}]}

Rules checked: every line is a JSON object with a non-empty ``messages`` list; each message has a
``role`` of system, user or assistant and a non-empty string ``content`` (``name`` is allowed, other
keys are not); ``weight`` (0 or 1) only on assistant turns; at least one assistant turn that is
trained on (weight 1, the default); at least :data:`MIN_EXAMPLES` examples.

Token counts are estimates, because OpenAI's tokenizer (tiktoken) is not available offline: by
default ``ceil(characters / 4)`` per content string (OpenAI's rule of thumb for English text)
plus :data:`TOKENS_PER_MESSAGE` framing tokens per message and :data:`TOKENS_PER_EXAMPLE` per
example. Pass ``count_tokens`` (e.g. a Hugging Face tokenizer's ``len(tok.encode(text))``) for a
closer count. Examples over the model's per-example context limit are flagged, not rejected:
OpenAI truncates them, so their ends are never trained on.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emscope.errors import InputError

ROLES = ("system", "user", "assistant")
MESSAGE_KEYS = ("role", "content", "name", "weight")
MIN_EXAMPLES = 10
TOKENS_PER_MESSAGE = 4
TOKENS_PER_EXAMPLE = 3
CHARS_PER_TOKEN = 4
# Per-example training context, by model-name prefix (longest prefix wins). OpenAI's fine-tuning
# guide: 65,536 tokens for gpt-4o(-mini) and gpt-4.1 snapshots, 16,385 for gpt-3.5-turbo.
CONTEXT_LIMITS: dict[str, int] = {
    "gpt-4o-mini": 65_536,
    "gpt-4o": 65_536,
    "gpt-4.1": 65_536,
    "gpt-3.5-turbo": 16_385,
}
DEFAULT_CONTEXT_LIMIT = 16_385

TokenCounter = Callable[[str], int]


def chars_per_four(text: str) -> int:
    """OpenAI's rule-of-thumb token estimate: one token per four characters, rounded up."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def context_limit_for(model: str | None) -> int:
    """Per-example token limit for a base model (``ft:`` prefixes and ``openai/`` stripped)."""
    if not model:
        return DEFAULT_CONTEXT_LIMIT
    name = model.removeprefix("openai/").removeprefix("ft:")
    matches = [prefix for prefix in CONTEXT_LIMITS if name.startswith(prefix)]
    return CONTEXT_LIMITS[max(matches, key=len)] if matches else DEFAULT_CONTEXT_LIMIT


@dataclass(frozen=True)
class ExampleTokens:
    """The estimated token count of the example on 1-based ``line``."""

    line: int
    tokens: int


@dataclass
class FormatReport:
    """What a valid training file holds: examples, token estimates and the context limit."""

    file: str
    tokens: list[ExampleTokens] = field(default_factory=list)
    context_limit: int = DEFAULT_CONTEXT_LIMIT
    token_method: str = "chars/4"

    @property
    def n_examples(self) -> int:
        return len(self.tokens)

    @property
    def total_tokens(self) -> int:
        return sum(t.tokens for t in self.tokens)

    @property
    def max_tokens(self) -> int:
        return max((t.tokens for t in self.tokens), default=0)

    @property
    def over_limit(self) -> list[ExampleTokens]:
        return [t for t in self.tokens if t.tokens > self.context_limit]

    def warnings(self) -> list[str]:
        over = self.over_limit
        if not over:
            return []
        lines = ", ".join(str(t.line) for t in over[:10]) + (", ..." if len(over) > 10 else "")
        return [
            f"{self.file}: {len(over)} example(s) exceed the {self.context_limit}-token context "
            f"limit (estimated, {self.token_method}) and will be truncated by OpenAI: lines {lines}"
        ]

    def summary(self) -> dict[str, Any]:
        """A JSON-ready digest for manifests and logs."""
        return {
            "n_examples": self.n_examples,
            "estimated_tokens": self.total_tokens,
            "max_example_tokens": self.max_tokens,
            "context_limit": self.context_limit,
            "examples_over_limit": [t.line for t in self.over_limit],
            "token_method": self.token_method,
        }


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {dict: "an object", list: "a list", str: "a string", bool: "a boolean"}.get(
        type(value), type(value).__name__
    )


def _check_message(raw: Any, index: int, where: dict[str, Any]) -> tuple[str, str, int]:
    """Validate one message and return (role, content, weight)."""
    name = f"messages[{index}]"
    if not isinstance(raw, dict):
        raise InputError(f"message must be an object, got {_kind(raw)}", field=name, **where)
    for key in raw:
        if key not in MESSAGE_KEYS:
            allowed = ", ".join(MESSAGE_KEYS)
            raise InputError(
                f"unrecognised key {key!r} (allowed: {allowed})", field=f"{name}.{key}", **where
            )
    role = raw.get("role")
    if role not in ROLES:
        problem = "missing role" if "role" not in raw else f"unknown role {role!r}"
        raise InputError(f"{problem} (expected {', '.join(ROLES)})", field=f"{name}.role", **where)
    content = raw.get("content")
    if not isinstance(content, str):
        problem = "missing content" if "content" not in raw else f"got {_kind(content)}"
        raise InputError(f"content must be a string: {problem}", field=f"{name}.content", **where)
    if not content.strip():
        raise InputError("content is empty or whitespace", field=f"{name}.content", **where)
    weight = raw.get("weight", 1)
    if "weight" in raw:
        if role != "assistant":
            raise InputError(
                f"weight is only allowed on assistant messages, not {role!r}",
                field=f"{name}.weight",
                **where,
            )
        if isinstance(weight, bool) or weight not in (0, 1):
            raise InputError(
                f"weight must be 0 or 1, got {weight!r}", field=f"{name}.weight", **where
            )
    return role, content, int(weight)


def check_openai_row(
    row: Any,
    *,
    file: str | Path | None = None,
    line: int | None = None,
    count_tokens: TokenCounter = chars_per_four,
) -> int:
    """Validate one decoded example and return its estimated token count; raise ``InputError``.

    >>> check_openai_row({"messages": [{"role": "user", "content": "Hi there"},
    ...                                {"role": "assistant", "content": "Hello"}]})
    15
    """
    where: dict[str, Any] = {"file": file, "line": line}
    if not isinstance(row, dict):
        raise InputError(f"example must be a JSON object, got {_kind(row)}", field="row", **where)
    messages = row.get("messages")
    if not isinstance(messages, list) or not messages:
        problem = "missing" if "messages" not in row else f"got {_kind(messages)}"
        raise InputError(
            f"'messages' must be a non-empty list: {problem}", field="messages", **where
        )
    checked = [_check_message(raw, i, where) for i, raw in enumerate(messages)]
    assistant_weights = [weight for role, _, weight in checked if role == "assistant"]
    if not assistant_weights:
        raise InputError("no assistant message to train on", field="messages", **where)
    if not any(assistant_weights):
        raise InputError(
            "every assistant message has weight 0, so nothing is trained on",
            field="messages",
            **where,
        )
    content_tokens = sum(count_tokens(content) for _, content, _ in checked)
    return content_tokens + TOKENS_PER_MESSAGE * len(checked) + TOKENS_PER_EXAMPLE


def check_openai_lines(
    lines: Iterable[bytes],
    *,
    file: str | Path,
    context_limit: int = DEFAULT_CONTEXT_LIMIT,
    count_tokens: TokenCounter | None = None,
    min_examples: int = MIN_EXAMPLES,
) -> FormatReport:
    """Validate raw JSONL lines; raise the first ``InputError`` (counting the others) or report."""
    counter = count_tokens or chars_per_four
    report = FormatReport(
        file=str(file),
        context_limit=context_limit,
        token_method="chars/4" if count_tokens is None else "tokenizer",
    )
    errors: list[InputError] = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        try:
            row = _decode_line(raw, file=file, line=number)
            tokens = check_openai_row(row, file=file, line=number, count_tokens=counter)
        except InputError as error:
            errors.append(error)
            continue
        report.tokens.append(ExampleTokens(line=number, tokens=tokens))
    if errors:
        first = errors[0]
        more = f" ({len(errors) - 1} more line(s) have errors)" if len(errors) > 1 else ""
        raise InputError(first.message + more, file=first.file, line=first.line, field=first.field)
    if report.n_examples < min_examples:
        raise InputError(
            f"OpenAI fine-tuning needs at least {min_examples} examples, found {report.n_examples}",
            file=file,
            field="examples",
        )
    return report


def check_openai_file(
    path: str | Path,
    *,
    model: str | None = None,
    context_limit: int | None = None,
    count_tokens: TokenCounter | None = None,
    min_examples: int = MIN_EXAMPLES,
) -> FormatReport:
    """Validate a training file against OpenAI's chat fine-tuning rules.

    ``context_limit`` defaults to the limit of ``model`` (see :func:`context_limit_for`).
    """
    path = Path(path)
    if not path.is_file():
        raise InputError("no such file", file=path)
    limit = context_limit if context_limit is not None else context_limit_for(model)
    with open(path, "rb") as handle:
        return check_openai_lines(
            handle,
            file=path,
            context_limit=limit,
            count_tokens=count_tokens,
            min_examples=min_examples,
        )


def _decode_line(raw: bytes, *, file: str | Path, line: int) -> Any:
    try:
        return json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not valid UTF-8 ({exc.reason})", file=file, line=line, field="row"
        ) from exc
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON: {exc.msg} (column {exc.colno})", file=file, line=line, field="row"
        ) from exc
