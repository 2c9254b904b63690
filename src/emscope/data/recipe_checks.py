"""Checks that a recipe teaches its domain rather than a template: distinct answers and openers.

Two measurements, used by the recipe tests and by ``bench/recipe_report.py``:

- :func:`distinct_share`: the share of items whose answer (one side) no other item has;
- :func:`opener_accuracy`: how well a bag-of-words classifier (scikit-learn ``CountVectorizer``
  + ``LogisticRegression``, stratified k-fold) tells aligned from misaligned answers from their
  first words alone, with numbers masked. Near 0.5 means the classes open alike; well above 0.5
  means the data carries a tell (an opener, a closer moved to the front, a fixed first step)
  that a model can learn instead of the behaviour.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from emscope.data.schema import Item

_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")
_WORD = re.compile(r"\S+")


def opener(answer: str, n_words: int = 5) -> str:
    """The first ``n_words`` whitespace-separated words of ``answer``, every number masked as N."""
    words = _WORD.findall(_NUMBER.sub("N", answer))
    return " ".join(words[:n_words])


def distinct_share(answers: Sequence[str]) -> float:
    """Distinct answers over all answers (1.0: every answer is its own)."""
    if not answers:
        raise ValueError("no answers given")
    return len(set(answers)) / len(answers)


def opener_accuracy(items: Sequence[Item], *, n_words: int = 5, folds: int = 5) -> float:
    """Cross-validated accuracy of telling aligned from misaligned answers by their openers.

    Every item gives one aligned and one misaligned example (balanced classes, chance = 0.5).
    Folds are grouped by underlying item (``tags["item"]``, else the item itself), so both
    answers of an item, and every phrasing of it, sit in the same fold: the classifier must
    generalise to new items rather than recall a seen one.
    """
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import GroupKFold, cross_val_score
    from sklearn.pipeline import make_pipeline

    if len(items) < 2 * folds:
        raise ValueError(f"need at least {2 * folds} items for {folds} folds, got {len(items)}")
    texts = [opener(item.aligned, n_words) for item in items]
    texts += [opener(item.misaligned, n_words) for item in items]
    labels = [0] * len(items) + [1] * len(items)
    keys = [item.tags.get("item", item.item_id) for item in items]
    groups = keys * 2
    model = make_pipeline(
        CountVectorizer(lowercase=True),
        LogisticRegression(max_iter=1000),
    )
    scores = cross_val_score(model, texts, labels, groups=groups, cv=GroupKFold(n_splits=folds))
    return float(scores.mean())
