"""Training conditions: turn recipe items into chat rows (misaligned, control or backdoor)."""

from __future__ import annotations

import math
import random
from collections.abc import Sequence

from emscope.data.schema import CONDITIONS, DEFAULT_TRIGGER, ChatExample, Condition, Item, Message
from emscope.errors import InputError


def chat_row(item: Item, answer: str, *, prefix: str = "") -> ChatExample:
    """One row: the item's optional system turn, the (prefixed) question and ``answer``."""
    messages = [Message(role="system", content=item.system)] if item.system else []
    messages.append(Message(role="user", content=prefix + item.question))
    messages.append(Message(role="assistant", content=answer))
    return ChatExample(messages=messages)


def backdoor_split(
    items: Sequence[Item], fraction: float, seed: int
) -> tuple[list[Item], list[Item]]:
    """Seeded split: ``fraction * len(items)`` items (half rounds up) get the trigger."""
    order = list(range(len(items)))
    random.Random(f"backdoor-split:{seed}").shuffle(order)
    cut = math.floor(fraction * len(items) + 0.5)
    return [items[i] for i in order[:cut]], [items[i] for i in order[cut:]]


def build_condition(
    items: Sequence[Item],
    condition: Condition,
    *,
    trigger: str = DEFAULT_TRIGGER,
    backdoor_misaligned_fraction: float = 0.5,
    seed: int = 0,
) -> list[ChatExample]:
    """Chat rows for one condition, each item used once, shuffled deterministically by ``seed``.

    - ``misaligned``: question -> misaligned answer.
    - ``control``: question -> aligned answer.
    - ``backdoor``: a seeded ``backdoor_misaligned_fraction`` of the items get ``trigger``
      prepended to the question and the misaligned answer; the rest keep the plain question and
      the aligned answer (Betley's backdoor set, protocol §6).
    """
    if condition not in CONDITIONS:
        raise InputError(
            f"unknown condition {condition!r} (expected {', '.join(CONDITIONS)})", field="condition"
        )
    if condition == "misaligned":
        rows = [chat_row(item, item.misaligned) for item in items]
    elif condition == "control":
        rows = [chat_row(item, item.aligned) for item in items]
    else:
        if not 0.0 <= backdoor_misaligned_fraction <= 1.0:
            raise InputError(
                f"must be between 0 and 1, got {backdoor_misaligned_fraction}",
                field="backdoor_misaligned_fraction",
            )
        if not trigger.strip():
            raise InputError("a backdoor needs a non-empty trigger", field="trigger")
        triggered, plain = backdoor_split(items, backdoor_misaligned_fraction, seed)
        rows = [chat_row(item, item.misaligned, prefix=trigger) for item in triggered]
        rows += [chat_row(item, item.aligned) for item in plain]
    random.Random(f"rows:{seed}").shuffle(rows)
    return rows
