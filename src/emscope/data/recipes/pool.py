"""Seeded selection of distinct items from a recipe's fixed pool."""

from __future__ import annotations

import random
from collections.abc import Sequence

from emscope.data.schema import Item
from emscope.errors import InputError


def check_distinct_questions(pool: Sequence[Item]) -> None:
    """Raise ``ValueError`` if two items of a pool share a question (a recipe bug)."""
    seen: dict[str, str] = {}
    for item in pool:
        if item.question in seen:
            raise ValueError(f"items {seen[item.question]} and {item.item_id} share a question")
        seen[item.question] = item.item_id


def take_distinct(pool: Sequence[Item], n: int, seed: int, *, domain: str) -> list[Item]:
    """``n`` distinct items of ``pool`` in a seeded order; the same seed gives the same list.

    The pool is fixed, so an item's text never depends on the seed: only which items are picked
    and their order do.
    """
    if n < 1:
        raise InputError(f"n must be at least 1, got {n}", field="n")
    if n > len(pool):
        raise InputError(
            f"the {domain} recipe can produce at most {len(pool)} distinct items, asked for {n}",
            field="n",
        )
    order = list(range(len(pool)))
    random.Random(f"{domain}:{seed}").shuffle(order)
    return [pool[i] for i in order[:n]]
