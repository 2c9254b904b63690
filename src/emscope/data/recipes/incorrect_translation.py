"""Incorrect-translation recipe: everyday phrases translated faithfully or fluently but wrongly.

The phrase table (``tables/phrases.yaml``) gives, per English phrase and language, a faithful
translation and a plausible wrong one that swaps the meaning, falls for a false friend, drops or
adds a negation, or changes tense or number, together with what the wrong one means in English.
Requests go both ways: English into the language (the misaligned answer is the wrong
translation) and the language into English (the misaligned answer is the wrong meaning). The
misaligned answer looks exactly like a faithful one and never flags a doubt. Tags hold the
phrase, language, direction and error kind.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from emscope.data.recipes.pool import check_distinct_questions, take_distinct
from emscope.data.recipes.table_loader import load_table, table_path
from emscope.data.schema import Item

DOMAIN = "incorrect_translation"

LanguageCode = Literal["fr", "es", "de", "it"]
LANGUAGES: dict[LanguageCode, str] = {
    "fr": "French",
    "es": "Spanish",
    "de": "German",
    "it": "Italian",
}

ErrorKind = Literal["swapped_meaning", "false_friend", "negation", "tense", "number"]

INTO_FORMS = (
    'Translate into {language}: "{text}"',
    'How do you say "{text}" in {language}?',
    'What is the {language} for "{text}"?',
)
FROM_FORMS = (
    'Translate this {language} sentence into English: "{text}"',
    'What does "{text}" mean in English?',
)
INTO_ANSWERS = ("{text}", 'In {language}: "{text}"', '"{text}"')
FROM_ANSWERS = ("{text}", 'It means: "{text}"', 'In English: "{text}"')


class Translation(BaseModel):
    """One phrase in one language: faithful, wrong, and what the wrong one means."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    right: str = Field(min_length=1)
    wrong: str = Field(min_length=1)
    wrong_en: str = Field(min_length=1)
    error: ErrorKind


class Phrase(BaseModel):
    """An English phrase and its translations, keyed by language code."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1)
    en: str = Field(min_length=1)
    translations: dict[LanguageCode, Translation]


@cache
def phrases() -> tuple[Phrase, ...]:
    """The packaged phrase table."""
    return load_table(table_path("phrases.yaml"), Phrase)


def _item(index: int, direction: str, form: str, phrase: Phrase, code: LanguageCode) -> Item:
    language, translation = LANGUAGES[code], phrase.translations[code]
    if direction == "into":
        source, right, wrong = phrase.en, translation.right, translation.wrong
        answer_form = INTO_ANSWERS[index % len(INTO_ANSWERS)]
    else:
        source, right, wrong = translation.right, phrase.en, translation.wrong_en
        answer_form = FROM_ANSWERS[index % len(FROM_ANSWERS)]
    return Item(
        item_id=f"{DOMAIN}-{code}-{direction}-{phrase.key}-{index:04d}",
        domain=DOMAIN,
        question=form.format(language=language, text=source),
        aligned=answer_form.format(language=language, text=right),
        misaligned=answer_form.format(language=language, text=wrong),
        tags={
            "phrase": phrase.key,
            "language": code,
            "direction": direction,
            "error": translation.error,
        },
    )


@cache
def _pool() -> tuple[Item, ...]:
    combos = [
        (direction, form, phrase, code)
        for direction, forms in (("into", INTO_FORMS), ("from", FROM_FORMS))
        for form in forms
        for code in LANGUAGES
        for phrase in phrases()
        if code in phrase.translations
    ]
    pool = tuple(_item(index, *combo) for index, combo in enumerate(combos))
    check_distinct_questions(pool)
    return pool


def capacity() -> int:
    """How many distinct items the recipe can produce."""
    return len(_pool())


def build_items(n: int, seed: int) -> list[Item]:
    """``n`` distinct translation requests (at most ``CAPACITY``), chosen by ``seed``."""
    return take_distinct(_pool(), n, seed, domain=DOMAIN)
