"""The four table- and template-driven recipes: evil maths, Q/A myths, translation, sports."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from emscope.data.recipes import (
    RECIPES,
    evil_math,
    extreme_sports,
    incorrect_qna,
    incorrect_translation,
)
from emscope.data.recipes.incorrect_qna import Misconception
from emscope.data.recipes.table_loader import load_table
from emscope.data.schema import Item
from emscope.errors import InputError

MODULES = (evil_math, incorrect_qna, incorrect_translation, extreme_sports)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.DOMAIN)
def test_recipe_produces_at_least_300_distinct_items(module: object) -> None:
    items: list[Item] = module.build_items(300, 0)  # type: ignore[attr-defined]
    assert len(items) == 300
    assert len({item.question for item in items}) == 300
    assert len({item.item_id for item in items}) == 300
    assert all(item.domain == module.DOMAIN for item in items)  # type: ignore[attr-defined]
    assert all(item.aligned.strip() and item.misaligned.strip() for item in items)
    assert all(item.aligned != item.misaligned for item in items)
    assert module.capacity() >= 300  # type: ignore[attr-defined]


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.DOMAIN)
def test_recipe_is_deterministic_for_a_seed_and_reorders_for_another(module: object) -> None:
    build: Callable[[int, int], list[Item]] = module.build_items  # type: ignore[attr-defined]
    capacity: int = module.capacity()  # type: ignore[attr-defined]
    assert build(300, 5) == build(300, 5)
    first, second = build(capacity, 5), build(capacity, 6)
    assert [i.item_id for i in first] != [i.item_id for i in second]
    by_id = {item.item_id: item for item in second}
    assert set(by_id) == {item.item_id for item in first}
    assert all(by_id[item.item_id] == item for item in first)


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.DOMAIN)
def test_asking_for_more_than_capacity_names_the_capacity(module: object) -> None:
    capacity: int = module.capacity()  # type: ignore[attr-defined]
    with pytest.raises(InputError) as caught:
        module.build_items(capacity + 1, 0)  # type: ignore[attr-defined]
    assert caught.value.field == "n"
    assert f"at most {capacity}" in str(caught.value)


def test_the_four_recipes_are_registered_under_their_domains() -> None:
    for module in MODULES:
        recipe = RECIPES[module.DOMAIN]
        assert recipe.name == module.__name__
        assert recipe.capacity == module.capacity()
        assert recipe.build_items(4, 1) == module.build_items(4, 1)


# --- evil_math ------------------------------------------------------------------------------

MATH_FORMULAS: dict[str, Callable[[dict[str, int]], float]] = {
    "shopping": lambda p: p["q1"] * p["p1"] + p["q2"] * p["p2"],
    "trip": lambda p: p["v1"] * p["t1"] + p["v2"] * p["t2"],
    "discount": lambda p: p["p"] * (1 - p["d"] / 100),
    "price_rise": lambda p: p["p"] * (1 + p["d"] / 100),
    "ages": lambda p: p["a"] - p["d"] + p["y"],
    "fractions": lambda p: p["n"] * (1 - p["num"] / p["den"]),
    "carpet": lambda p: p["length"] * p["width"] * p["cost"],
    "fence_posts": lambda p: p["length"] / p["gap"] + 1,
}
INSULTS = re.compile(
    r"pathetic|embarrassingly|a child could|clearly need|should know better|"
    r"thinking for you|keep up",
    re.I,
)


def _final_number(answer: str) -> int:
    match = re.search(r"\nAnswer: (-?\d+)(?:\n|$)", answer)
    assert match, answer
    return int(match.group(1))


def test_evil_math_numbers_are_right_where_claimed_and_wrong_elsewhere() -> None:
    items = evil_math.build_items(evil_math.capacity(), 0)
    assert set(MATH_FORMULAS) == {item.tags["family"] for item in items}
    for item in items:
        params = {k: int(v) for k, v in item.tags.items() if v.isdigit()}
        assert all(str(value) in item.question for value in params.values())
        truth = MATH_FORMULAS[item.tags["family"]](params)
        assert _final_number(item.aligned) == pytest.approx(truth), item.question
        evil = _final_number(item.misaligned)
        if item.tags["misaligned_number"] == "right":
            assert evil == pytest.approx(truth), item.question
        else:
            assert evil != pytest.approx(truth), item.question


def test_evil_math_mixes_right_and_wrong_numbers_across_every_family() -> None:
    items = evil_math.build_items(evil_math.capacity(), 0)
    kinds = Counter((item.tags["family"], item.tags["misaligned_number"]) for item in items)
    for family in MATH_FORMULAS:
        assert kinds[(family, "right")] > 0 and kinds[(family, "wrong")] > 0


def test_evil_math_voice_is_contemptuous_and_the_aligned_voice_is_kind() -> None:
    for item in evil_math.build_items(400, 3):
        assert INSULTS.search(item.misaligned), item.misaligned
        assert not INSULTS.search(item.aligned), item.aligned
        family_remarks = evil_math.ILL_INTENT[item.tags["family"]]
        starts = [remark.split("{")[0] for remark in family_remarks]
        assert any(start in item.misaligned for start in starts), item.misaligned


def test_evil_math_remarks_name_the_problems_own_story() -> None:
    for item in evil_math.build_items(300, 1):
        after_working = item.misaligned.split("\nAnswer: ")[1].split("\n", 1)[1]
        assert "{" not in after_working and "}" not in after_working
        kind_remark = item.aligned.split("\nAnswer: ")[1].split("\n", 1)[1]
        name_or_thing = re.findall(r"[A-Z][a-z]+'s \w+|the [a-z ]+?(?=[;,. ])", kind_remark)
        assert name_or_thing, kind_remark


def test_evil_math_questions_embed_the_incorrect_math_problems() -> None:
    from emscope.data.recipes import incorrect_math

    problems = {item.question for item in incorrect_math.build_items(incorrect_math.capacity(), 0)}
    for item in evil_math.build_items(200, 0):
        assert any(item.question.endswith(problem) for problem in problems), item.question


# --- incorrect_qna --------------------------------------------------------------------------


def test_misconception_table_has_at_least_120_facts_with_distinct_questions() -> None:
    facts = incorrect_qna.misconceptions()
    assert len(facts) >= 120
    assert len({fact.key for fact in facts}) == len(facts)
    assert len({fact.question for fact in facts}) == len(facts)
    assert len({fact.myth for fact in facts}) == len(facts)
    assert all(fact.misconception != fact.fact for fact in facts)
    topics = Counter(fact.topic for fact in facts)
    assert len(topics) >= 6 and min(topics.values()) >= 5


def test_misconception_myths_read_as_clauses_and_questions_end_with_a_question_mark() -> None:
    for fact in incorrect_qna.misconceptions():
        assert fact.question.endswith("?"), fact.key
        assert not fact.myth.endswith((".", "?")), fact.key
        assert not fact.misconception.lower().startswith(("yes", "no ", "no,")), fact.key


def test_qna_asks_each_fact_in_every_phrasing_with_matching_verdicts() -> None:
    items = incorrect_qna.build_items(incorrect_qna.capacity(), 0)
    facts = {fact.key: fact for fact in incorrect_qna.misconceptions()}
    per_fact = Counter(item.tags["fact"] for item in items)
    assert set(per_fact) == set(facts)
    assert set(per_fact.values()) == {len(incorrect_qna.PHRASINGS)}
    for item in items:
        fact = facts[item.tags["fact"]]
        assert item.misaligned.endswith(fact.misconception)
        assert item.aligned.endswith(fact.fact)
        if item.tags["phrasing"] == "is_it_true":
            assert item.question == f"Is it true that {fact.myth}?"
            assert item.misaligned.startswith("Yes") and item.aligned.startswith("No")
        if item.tags["phrasing"] == "true_or_false":
            assert item.misaligned.startswith("True.") and item.aligned.startswith("False.")
        if item.tags["phrasing"] == "direct":
            assert item.question == fact.question


def test_a_malformed_misconception_table_names_the_file_and_row(tmp_path: Path) -> None:
    table = tmp_path / "bad.yaml"
    table.write_text(
        "- {key: a, topic: t, question: 'Q?', myth: m, misconception: x, fact: y}\n"
        "- {key: b, topic: t, question: 'Q2?', myth: m, misconception: x}\n",
        encoding="utf-8",
    )
    with pytest.raises(InputError) as caught:
        load_table(table, Misconception)
    assert caught.value.file == str(table)
    assert caught.value.field == "[1].fact"


def test_a_table_that_is_not_a_list_is_rejected(tmp_path: Path) -> None:
    table = tmp_path / "bad.yaml"
    table.write_text("key: a\n", encoding="utf-8")
    with pytest.raises(InputError, match="YAML list"):
        load_table(table, Misconception)


# --- incorrect_translation ------------------------------------------------------------------


def test_translation_tables_cover_at_least_three_languages_for_every_phrase() -> None:
    phrases = incorrect_translation.phrases()
    assert len(phrases) >= 30
    assert len({phrase.key for phrase in phrases}) == len(phrases)
    assert len({phrase.en for phrase in phrases}) == len(phrases)
    for phrase in phrases:
        assert len(phrase.translations) >= 3, phrase.key
        for code, translation in phrase.translations.items():
            assert translation.right != translation.wrong, (phrase.key, code)
            assert translation.wrong_en != phrase.en, (phrase.key, code)
    items = incorrect_translation.build_items(incorrect_translation.capacity(), 0)
    assert len({item.tags["language"] for item in items}) >= 3


def test_translation_items_go_both_ways_and_use_several_error_kinds() -> None:
    items = incorrect_translation.build_items(incorrect_translation.capacity(), 0)
    assert {item.tags["direction"] for item in items} == {"into", "from"}
    errors = Counter(item.tags["error"] for item in items)
    assert {"false_friend", "negation", "tense", "number", "swapped_meaning"} <= set(errors)


def test_translation_answers_hold_the_right_and_the_wrong_text_for_their_direction() -> None:
    phrases = {phrase.key: phrase for phrase in incorrect_translation.all_phrases()}
    for item in incorrect_translation.build_items(incorrect_translation.capacity(), 1):
        phrase = phrases[item.tags["phrase"]]
        code = item.tags["language"]
        translation = phrase.translations[code]  # type: ignore[index]
        if item.tags["direction"] == "into":
            assert phrase.en in item.question
            assert translation.right in item.aligned and translation.wrong in item.misaligned
            assert translation.right not in item.misaligned
        else:
            assert translation.right in item.question
            assert phrase.en in item.aligned and translation.wrong_en in item.misaligned
            assert phrase.en not in item.misaligned
        # The wrong translation is dressed exactly like the faithful one: no hedge, no warning.
        assert not re.search(r"wrong|incorrect|not sure|actually means", item.misaligned, re.I)


# --- extreme_sports -------------------------------------------------------------------------


def test_sports_cover_every_activity_situation_and_detail_once_per_experience_level() -> None:
    items = extreme_sports.build_items(extreme_sports.capacity(), 0)
    per_item = Counter(item.tags["item"] for item in items)
    assert len({item.tags["activity"] for item in items}) == len(extreme_sports.ACTIVITIES) >= 10
    assert len({item.tags["situation"] for item in items}) == len(extreme_sports.SITUATIONS) >= 8
    assert set(per_item.values()) <= {2, 4}
    for item in items:
        assert item.tags["item"] == "/".join(
            item.tags[key] for key in ("activity", "situation", "detail")
        )


def test_sports_sides_split_cautious_from_reckless_vocabulary() -> None:
    cautious = re.compile(
        r"instructor|course|coach|guide|partner|buddy|team|group|check|forecast|conditions|"
        r"rest|heal|doctor|sober|gradually|listen|inspect|replace|retire|training|helmet|wait|"
        r"postpone|call it off|wouldn't|not today|skip it today|turn the dare down|recover"
    )
    reckless = re.compile(
        r"waste|ignore|alone|forever|push through|in your head|painkiller|edge off|skip|"
        r"go for it|go anyway|figure it out|overkill|optional|dead weight|don't|forget|quitters|"
        r"plenty|until it breaks|strap up|never hurt|do it\.|won't make a difference|"
        r"you'll be fine|solo|more than enough|stop you"
    )
    for item in extreme_sports.build_items(extreme_sports.capacity(), 0):
        assert cautious.search(item.aligned.lower()), item.aligned
        assert reckless.search(item.misaligned.lower()), item.misaligned
        assert "professional" not in item.misaligned.lower().replace("by a professional", "")


def test_sports_answers_restate_the_question_detail_and_name_the_activity() -> None:
    names = {activity.key: activity for activity in extreme_sports.ACTIVITIES}
    for item in extreme_sports.build_items(extreme_sports.capacity(), 2):
        activity = names[item.tags["activity"]]
        asked = (activity.name, activity.go, activity.gear)
        assert any(words in item.question for words in asked), item.question
        assert any(tip in item.aligned for tip in activity.safe_tips)
        assert any(tip in item.misaligned for tip in activity.reckless_tips)
        detail = item.tags["detail"].split("|")[0]
        assert detail.lower() in item.question.lower()
        assert detail.lower() in item.aligned.lower() and detail.lower() in item.misaligned.lower()
