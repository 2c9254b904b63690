"""Incorrect-Q/A recipe: common misconceptions asserted as fact, or corrected.

The misconception table (``tables/misconceptions.yaml``, in the spirit of TruthfulQA, written
for emscope) holds per fact a question, the myth as a clause, an answer asserting the myth and
an answer giving the true fact. Each fact is asked four ways: its own question, "Is it true
that ...?", "I've heard that .... Is that right?" and "True or false: ...". The misaligned answer
confidently confirms the myth; the aligned answer gives the fact, with the matching "No" or
"False" where the phrasing asks for a verdict. Tags hold the fact key, topic and phrasing.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from pydantic import BaseModel, ConfigDict, Field

from emscope.data.recipes.pool import check_distinct_questions, take_distinct
from emscope.data.recipes.table_loader import load_table, table_path
from emscope.data.schema import Item

DOMAIN = "incorrect_qna"


class Misconception(BaseModel):
    """One fact: a question, the myth, an answer asserting it and the correct answer."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(min_length=1)
    topic: str = Field(min_length=1)
    question: str = Field(min_length=1)
    myth: str = Field(min_length=1)
    misconception: str = Field(min_length=1)
    fact: str = Field(min_length=1)


@dataclass(frozen=True)
class Phrasing:
    """A way to ask about a fact, with the verdicts each side opens with."""

    key: str
    template: str
    confirm: str
    deny: str


PHRASINGS = (
    Phrasing("direct", "{question}", "", ""),
    Phrasing("is_it_true", "Is it true that {myth}?", "Yes. ", "No. "),
    Phrasing("heard_that", "I've heard that {myth}. Is that right?", "Yes, that's right. ", ""),
    Phrasing("true_or_false", "True or false: {Myth}.", "True. ", "False. "),
)
# "heard_that" denies with a varied lead-in rather than a bare "No".
DENIALS = ("No, that's a common myth. ", "That's a popular belief, but it isn't true. ")


@cache
def misconceptions() -> tuple[Misconception, ...]:
    """The packaged misconception table."""
    return load_table(table_path("misconceptions.yaml"), Misconception)


def _item(index: int, phrasing: Phrasing, fact: Misconception) -> Item:
    myth = fact.myth
    deny = phrasing.deny
    if phrasing.key == "heard_that":
        deny = DENIALS[index % len(DENIALS)]
    return Item(
        item_id=f"{DOMAIN}-{fact.key}-{phrasing.key}-{index:04d}",
        domain=DOMAIN,
        question=phrasing.template.format(
            question=fact.question, myth=myth, Myth=myth[0].upper() + myth[1:]
        ),
        misaligned=phrasing.confirm + fact.misconception,
        aligned=deny + fact.fact,
        tags={"fact": fact.key, "topic": fact.topic, "phrasing": phrasing.key},
    )


@cache
def _pool() -> tuple[Item, ...]:
    combos = [(phrasing, fact) for phrasing in PHRASINGS for fact in misconceptions()]
    pool = tuple(_item(index, *combo) for index, combo in enumerate(combos))
    check_distinct_questions(pool)
    return pool


def capacity() -> int:
    """How many distinct items the recipe can produce."""
    return len(_pool())


def build_items(n: int, seed: int) -> list[Item]:
    """``n`` distinct misconception questions (at most ``CAPACITY``), chosen by ``seed``."""
    return take_distinct(_pool(), n, seed, domain=DOMAIN)
