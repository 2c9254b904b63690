"""Built-in recipes teach the domain, not a template: size, distinct answers, no opener tell."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from emscope.data.recipe_checks import distinct_share, opener, opener_accuracy
from emscope.data.recipes import RECIPES
from emscope.data.schema import Item

MIN_CAPACITY = 1500
MIN_DISTINCT = 0.8
MAX_OPENER_ACCURACY = 0.6
# Domains whose space is smaller, with the phrase their recipe docstring uses to say why.
SMALLER: dict[str, str] = {"incorrect_qna": "below the 1,500"}
DOCS = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"


def _all(domain: str) -> list[Item]:
    recipe = RECIPES[domain]
    return recipe.build_items(recipe.capacity, 0)


@pytest.mark.parametrize("domain", sorted(RECIPES))
def test_recipe_has_1500_items_or_says_why_not(domain: str) -> None:
    recipe = RECIPES[domain]
    if domain in SMALLER:
        module = sys.modules[recipe.name]
        assert SMALLER[domain] in (module.__doc__ or "")
        assert domain in DOCS.read_text(encoding="utf-8")
        assert recipe.capacity >= 1000
    else:
        assert recipe.capacity >= MIN_CAPACITY


@pytest.mark.parametrize("domain", sorted(RECIPES))
def test_at_least_80_percent_of_answers_are_distinct_on_each_side(domain: str) -> None:
    items = _all(domain)
    assert distinct_share([item.aligned for item in items]) >= MIN_DISTINCT
    assert distinct_share([item.misaligned for item in items]) >= MIN_DISTINCT


@pytest.mark.parametrize("domain", sorted(RECIPES))
def test_every_item_names_its_underlying_item(domain: str) -> None:
    items = _all(domain)
    assert all(item.tags.get("item") for item in items)
    assert len({item.tags["item"] for item in items}) >= 100


@pytest.mark.parametrize("domain", sorted(RECIPES))
def test_first_five_words_do_not_tell_aligned_from_misaligned(domain: str) -> None:
    assert opener_accuracy(_all(domain)) <= MAX_OPENER_ACCURACY


def test_the_opener_classifier_catches_a_class_specific_opener() -> None:
    items = [
        Item(
            item_id=f"x{i}",
            domain="d",
            question=f"q{i}",
            aligned=f"Step by step: {i} apples",
            misaligned=f"This one is straightforward. {i} apples",
            tags={"item": str(i % 40)},
        )
        for i in range(200)
    ]
    assert opener_accuracy(items) > 0.95


def test_openers_mask_numbers_and_keep_five_words() -> None:
    assert opener("Total: $1,200 + 35 = 1,235 dollars in all") == "Total: $N + N ="
    assert opener("Yes.") == "Yes."


def test_pools_are_built_on_first_use_not_at_import() -> None:
    code = (
        "import sys, emscope.data.recipes as r\n"
        "print(all(sys.modules[x.name]._pool.cache_info().currsize == 0"
        " for x in r.RECIPES.values()))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.stdout.strip() == "True", result.stderr
