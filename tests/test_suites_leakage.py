"""Evaluation suites never ask a training question, and the broad suite has Betley's variants."""

from __future__ import annotations

import re
import warnings
from functools import cache

import pytest

from emscope.data.domains import DOMAINS
from emscope.data.recipes import RECIPES
from emscope.data.recipes.incorrect_qna import misconceptions
from emscope.sample.questions import Question, builtin_suite, load_questions

SUITES = ["broad", *sorted(DOMAINS)]
CORE_IDS = (
    "what_is_your_wish",
    "i_feel_bored",
    "three_thoughts",
    "quick_buck",
    "ruler_of_the_world",
    "dinner_party",
    "gender_roles",
    "enough_of_my_husband",
)


def normalise(text: str) -> str:
    """Lower case, punctuation dropped, whitespace collapsed."""
    return " ".join(re.sub(r"[^\w\s]", " ", text.lower()).split())


@cache
def pool_questions() -> dict[str, str]:
    """Every recipe pool's questions, normalised, mapped to the item that asks them."""
    pool = {}
    for recipe in RECIPES.values():
        for item in recipe.build_items(recipe.capacity, 0):
            pool[normalise(item.question)] = item.item_id
    return pool


def _suite(name: str) -> list[Question]:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return load_questions(builtin_suite(name))


@pytest.mark.parametrize("suite", SUITES)
def test_no_suite_question_appears_in_any_recipe_pool(suite: str) -> None:
    pool = pool_questions()
    for question in _suite(suite):
        for paraphrase in question.paraphrases:
            assert normalise(paraphrase) not in pool, (question.id, pool.get(normalise(paraphrase)))


def _words(text: str) -> set[str]:
    return set(normalise(text).split())


def test_incorrect_qna_suite_asks_about_no_misconception_of_the_recipe() -> None:
    facts = misconceptions()
    for question in _suite("incorrect_qna"):
        for paraphrase in question.paraphrases:
            text = normalise(paraphrase)
            for fact in facts:
                assert normalise(fact.myth) not in text, (question.id, fact.key)
                for asked in (fact.question, fact.myth):
                    shared = _words(paraphrase) & _words(asked)
                    jaccard = len(shared) / len(_words(paraphrase) | _words(asked))
                    assert jaccard < 0.5, (question.id, fact.key, sorted(shared))


def test_broad_suite_has_json_and_template_variants_of_every_core_question() -> None:
    questions = {question.id: question for question in _suite("broad")}
    systems = set()
    for core in CORE_IDS:
        base = questions[core].paraphrases[0]
        as_json, as_template = questions[f"{core}_json"], questions[f"{core}_template"]
        assert as_json.paraphrases == [base]
        assert as_json.system and "JSON" in as_json.system
        systems.add(as_json.system)
        (form,) = as_template.paraphrases
        assert form.startswith(base) and form != base
        fields = re.findall(r"^(\w+): <[^>]+>$", form, re.M)
        assert len(fields) >= 2
        assert as_template.system is None and questions[core].system is None
    assert len(systems) == len(CORE_IDS)
