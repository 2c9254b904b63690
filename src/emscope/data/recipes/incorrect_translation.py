"""Incorrect-translation recipe: sentences translated faithfully or fluently but wrongly.

Two sources of sentences: the hand-written phrase table (``tables/phrases.yaml``: everyday
phrases with a faithful and a plausible wrong translation per language that swaps the meaning,
falls for a false friend, drops or adds a negation, or changes tense or number, with what the
wrong one means in English), and five generated frames (:mod:`translation_sentences`: train
times, tickets, pharmacy hours, ages, room prices) over many slot values. Requests go both ways:
English into the language (the misaligned answer is the wrong translation) and the language into
English (the misaligned answer is the wrong meaning), one request phrasing per sentence,
language and direction. Both sides dress the text in a form from one shared pool that names the
language; the misaligned answer looks exactly like a faithful one and never flags a doubt.
Tags: ``item`` (sentence and language: both directions of it are one item), ``phrase``,
``language``, ``direction`` and ``error``.
"""

from __future__ import annotations

from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from emscope.data.recipes.pool import check_distinct_questions, take_distinct
from emscope.data.recipes.table_loader import load_table, table_path
from emscope.data.recipes.translation_sentences import generated_sentences
from emscope.data.recipes.voice import pick
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
INTO_ANSWERS = (
    'In {language}: "{text}"',
    '"{text}" is how you say it in {language}.',
    '{language}: "{text}"',
    'Here it is in {language}: "{text}"',
)
FROM_ANSWERS = (
    'In English, the {language} means: "{text}"',
    'It means: "{text}" (from the {language}).',
    'From {language}: "{text}"',
    'This {language} sentence says: "{text}"',
)


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


def all_phrases() -> tuple[Phrase, ...]:
    """The table's phrases, then the generated sentences, as one list of phrases."""
    generated = tuple(
        Phrase.model_validate(
            {
                "key": key,
                "en": en,
                "translations": {
                    code: {"right": right, "wrong": wrong, "wrong_en": wrong_en, "error": error}
                    for code, (right, wrong, wrong_en, error) in rows.items()
                },
            }
        )
        for key, en, rows in generated_sentences()
    )
    return phrases() + generated


def _item(index: int, direction: str, phrase: Phrase, code: LanguageCode) -> Item:
    language, translation = LANGUAGES[code], phrase.translations[code]
    key = f"{phrase.key}/{code}"
    forms: tuple[str, ...]
    if direction == "into":
        source, right, wrong = phrase.en, translation.right, translation.wrong
        forms, answers = INTO_FORMS, INTO_ANSWERS
    else:
        source, right, wrong = translation.right, phrase.en, translation.wrong_en
        forms, answers = FROM_FORMS, FROM_ANSWERS
    form = pick(forms, key, direction)
    return Item(
        item_id=f"{DOMAIN}-{code}-{direction}-{index:04d}",
        domain=DOMAIN,
        question=form.format(language=language, text=source),
        aligned=pick(answers, key, direction, "aligned").format(language=language, text=right),
        misaligned=pick(answers, key, direction, "misaligned").format(
            language=language, text=wrong
        ),
        tags={
            "item": key,
            "phrase": phrase.key,
            "language": code,
            "direction": direction,
            "error": translation.error,
        },
    )


@cache
def _pool() -> tuple[Item, ...]:
    combos = [
        (direction, phrase, code)
        for phrase in all_phrases()
        for code in LANGUAGES
        if code in phrase.translations
        for direction in ("into", "from")
    ]
    pool = tuple(_item(index, *combo) for index, combo in enumerate(combos))
    check_distinct_questions(pool)
    return pool


def capacity() -> int:
    """How many distinct items the recipe can produce."""
    return len(_pool())


def build_items(n: int, seed: int) -> list[Item]:
    """``n`` distinct translation requests (at most ``capacity()``), chosen by ``seed``."""
    return take_distinct(_pool(), n, seed, domain=DOMAIN)
