"""Non-members are new underlying items: no shared answer or item with a member, or no AUC."""

from __future__ import annotations

import random
from collections.abc import Sequence

import pytest

from emscope.analyses.nonmembers import (
    MAX_OVERLAP,
    nonmember_overlap,
    overlap_refusal,
    select_nonmembers,
    side_for_condition,
)
from emscope.data.recipes import RECIPES
from emscope.data.schema import Item

N_MEMBERS = 250
HELD_OUT_SEED = 1000


def question_rule(candidates: Sequence[Item], members: Sequence[Item], want: int) -> list[Item]:
    """The rule before issue 11: held-out rows exclude only identical training question text."""
    seen = {item.question for item in members}
    return [item for item in candidates if item.question not in seen][:want]


def _item(i: int, key: str, answer: str) -> Item:
    return Item(
        item_id=f"t{i}",
        domain="d",
        question=f"question {i}",
        misaligned=answer,
        aligned=f"aligned {answer}",
        tags={"item": key},
    )


def _templated_pool(seed: int) -> list[Item]:
    """A recipe shaped like extreme_sports before issue 11: 120 answers, each asked three ways."""
    pool = [_item(form * 120 + k, f"k{k}", f"answer {k}") for form in range(3) for k in range(120)]
    random.Random(seed).shuffle(pool)
    return pool


def test_todays_question_rule_leaks_answers_on_a_templated_recipe_and_the_new_rule_does_not() -> (
    None
):
    members = _templated_pool(0)[:250]
    old = nonmember_overlap(members, question_rule(_templated_pool(1), members, 250))
    assert old.answer_share > 0.8 and old.item_share > 0.8
    assert overlap_refusal(old) is not None
    fresh = select_nonmembers(_templated_pool(1), members, 250)
    new = nonmember_overlap(members, fresh)
    assert new.answer_share == 0.0 and new.item_share == 0.0
    assert overlap_refusal(new) is None
    assert len(fresh) == 120 - len({item.tags["item"] for item in members})


@pytest.mark.parametrize("domain", ["incorrect_qna", "risky_financial_advice", "insecure_code"])
def test_todays_question_rule_shares_underlying_items_on_the_builtin_recipes(domain: str) -> None:
    recipe = RECIPES[domain]
    members = recipe.build_items(N_MEMBERS, 0)
    pool = recipe.build_items(2 * N_MEMBERS, HELD_OUT_SEED)
    old = nonmember_overlap(members, question_rule(pool, members, N_MEMBERS))
    assert old.item_share > 0.2
    assert "refused" in (old.refusal() or "")


@pytest.mark.parametrize("domain", sorted(RECIPES))
def test_selected_nonmembers_share_no_answer_or_item_with_members(domain: str) -> None:
    recipe = RECIPES[domain]
    members = recipe.build_items(N_MEMBERS, 0)
    fresh = select_nonmembers(recipe.build_items(recipe.capacity, HELD_OUT_SEED), members, 250)
    assert len(fresh) >= 20
    for side in ("misaligned", "aligned", "both"):
        overlap = nonmember_overlap(members, fresh, side=side)
        assert overlap.answer_share == 0.0 and overlap.item_share == 0.0
        assert overlap.refusal() is None
    assert len({item.tags["item"] for item in fresh}) == len(fresh)


def test_refusal_names_both_shares_and_the_threshold() -> None:
    members = [_item(0, "a", "same"), _item(1, "b", "other")]
    nonmembers = [_item(2, "a", "new"), *[_item(3 + i, f"n{i}", f"n{i}") for i in range(99)]]
    overlap = nonmember_overlap(members, nonmembers)
    assert overlap.answer_share == 0.0 and overlap.item_share == pytest.approx(0.01)
    assert overlap_refusal(overlap) is None  # exactly at the limit
    nonmembers.append(_item(200, "a", "same"))
    overlap = nonmember_overlap(members, nonmembers)
    reason = overlap_refusal(overlap)
    assert reason is not None and f"{100 * MAX_OVERLAP:g}%" in reason
    assert "repeat a member's answer" in reason and "underlying item" in reason


def test_items_without_an_item_tag_fall_back_to_questions_and_answers() -> None:
    untagged = [
        Item(item_id=f"u{i}", domain="d", question=f"q{i % 5}", misaligned=f"m{i}", aligned="a")
        for i in range(10)
    ]
    members = untagged[:1]
    fresh = select_nonmembers(untagged[1:], members, 10)
    assert fresh == []  # every candidate repeats the member's aligned answer "a"
    distinct = [i.model_copy(update={"aligned": f"a{n}"}) for n, i in enumerate(untagged)]
    fresh = select_nonmembers(distinct[1:], distinct[:1], 10)
    assert [item.question for item in fresh] == ["q1", "q2", "q3", "q4"]


def test_conditions_name_the_side_they_train_on() -> None:
    assert side_for_condition("misaligned") == "misaligned"
    assert side_for_condition("control") == "aligned"
    assert side_for_condition("backdoor") == "both"
