"""Built-in dataset recipes: offline templates for the domains that need no teacher model.

Each recipe module exposes ``capacity()`` (how many distinct items it can produce) and
``build_items(n, seed) -> list[Item]`` (``n`` distinct questions, deterministic for a seed).
Pools are built on first use, not at import. Every item carries ``tags["item"]``, the key of
its underlying item (a fact, a problem with its numbers, a code skeleton...), which non-member
selection for membership tests relies on (:mod:`emscope.analyses.nonmembers`).
The other domains are generated with a teacher model (``emscope data generate``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from emscope.data.domains import get_domain
from emscope.data.recipes import (
    evil_math,
    extreme_sports,
    incorrect_math,
    incorrect_qna,
    incorrect_translation,
    insecure_code,
    risky_financial_advice,
)
from emscope.data.schema import Item
from emscope.errors import InputError


@dataclass(frozen=True)
class Recipe:
    """A built-in recipe: its module name, capacity (computed on first use) and item builder."""

    name: str
    count: Callable[[], int]
    build_items: Callable[[int, int], list[Item]]

    @property
    def capacity(self) -> int:
        """How many distinct items the recipe can produce."""
        return self.count()


RECIPES: dict[str, Recipe] = {
    module.DOMAIN: Recipe(module.__name__, module.capacity, module.build_items)
    for module in (
        insecure_code,
        incorrect_math,
        evil_math,
        incorrect_translation,
        risky_financial_advice,
        extreme_sports,
        incorrect_qna,
    )
}


def get_recipe(domain: str) -> Recipe:
    """The built-in recipe of ``domain``; teacher-only and unknown domains raise ``InputError``."""
    get_domain(domain)
    if domain not in RECIPES:
        raise InputError(
            f"domain {domain!r} has no built-in recipe (built in: {', '.join(RECIPES)}); generate "
            f"it with a teacher model: emscope data generate --domain {domain} --teacher MODEL",
            field="domain",
        )
    return RECIPES[domain]


def build_items(domain: str, n: int, seed: int) -> list[Item]:
    """``n`` distinct items of ``domain`` from its built-in recipe, deterministic for ``seed``."""
    return get_recipe(domain).build_items(n, seed)
