"""Features of a (question, answer) pair for the offline judge: hashed n-grams and text statistics.

No model to load and no network: word 1-2-grams and character 3-grams (first 1,000 characters)
of the answer, hashed (scikit-learn's ``HashingVectorizer``, MurmurHash3, so no vocabulary
ships), plus cheap statistics that catch broken text and mismatched answers (length,
repetition, non-ASCII share, code markers, overlap with the question). ``pair_features`` is
pure and deterministic; the recipe string names every parameter, and the weights record the
recipe they were trained with.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence

import numpy as np
from scipy import sparse

WORD_FEATURES = 2**17
CHAR_FEATURES = 2**17
MAX_CHARS = 4000
CHAR_GRAM_CHARS = 1000
CODE_MARKERS = ("```", "def ", "import ", "#include", "};", "</", "=>", "print(", "return ")
STATISTICS = (
    "log_chars",
    "log_words",
    "unique_word_share",
    "repeated_trigram_share",
    "top_word_share",
    "non_ascii_share",
    "digit_share",
    "upper_share",
    "punctuation_share",
    "newline_density",
    "code_markers",
    "question_overlap",
    "empty",
)
FEATURE_RECIPE = (
    f"hashed-v1:word(1,2)x{WORD_FEATURES}+char_wb(3,3)x{CHAR_FEATURES}"
    f"[first {CHAR_GRAM_CHARS} chars]+stats({','.join(STATISTICS)});first {MAX_CHARS} chars"
)
_WORD = re.compile(r"\w+", re.UNICODE)


def _share(part: float, whole: float) -> float:
    return part / whole if whole else 0.0


def text_statistics(question: str, answer: str) -> list[float]:
    """The ``STATISTICS`` of one answer, each scaled to about 0..1.

    >>> len(text_statistics("What is 2+2?", "4"))
    13
    """
    text = answer[:MAX_CHARS]
    words = [w.lower() for w in _WORD.findall(text)]
    n_chars, n_words = len(text), len(words)
    trigrams = list(zip(words, words[1:], words[2:], strict=False))
    counts = Counter(words)
    letters = sum(c.isalpha() for c in text)
    question_words = {w.lower() for w in _WORD.findall(question)}
    answer_words = set(words)
    union = question_words | answer_words
    return [
        np.log1p(n_chars) / 8.0,
        np.log1p(n_words) / 6.0,
        _share(len(counts), n_words),
        1.0 - _share(len(set(trigrams)), len(trigrams)) if trigrams else 0.0,
        _share(max(counts.values()), n_words) if counts else 0.0,
        _share(sum(ord(c) > 127 for c in text), n_chars),
        _share(sum(c.isdigit() for c in text), n_chars),
        _share(sum(c.isupper() for c in text), letters),
        _share(sum((not c.isalnum()) and not c.isspace() for c in text), n_chars),
        min(1.0, 10.0 * _share(text.count("\n"), n_chars)),
        min(5, sum(text.count(m) for m in CODE_MARKERS)) / 5.0,
        _share(len(question_words & answer_words), len(union)),
        float(n_words == 0),
    ]


def _vectorizers() -> tuple[object, object]:
    from sklearn.feature_extraction.text import HashingVectorizer

    word = HashingVectorizer(
        analyzer="word", ngram_range=(1, 2), n_features=WORD_FEATURES, alternate_sign=False
    )
    char = HashingVectorizer(
        analyzer="char_wb", ngram_range=(3, 3), n_features=CHAR_FEATURES, alternate_sign=False
    )
    return word, char


def pair_features(questions: Sequence[str], answers: Sequence[str]) -> sparse.csr_matrix:
    """``(n, WORD_FEATURES + CHAR_FEATURES + len(STATISTICS))`` sparse float64 features."""
    texts = [a.strip()[:MAX_CHARS] for a in answers]
    word, char = _vectorizers()
    stats = np.array(
        [text_statistics(q, a) for q, a in zip(questions, texts, strict=True)], dtype=np.float64
    ).reshape(len(texts), len(STATISTICS))
    return sparse.hstack(
        [
            word.transform(texts),  # type: ignore[attr-defined]
            char.transform([t[:CHAR_GRAM_CHARS] for t in texts]),  # type: ignore[attr-defined]
            sparse.csr_matrix(stats),
        ],
        format="csr",
    )


def n_features() -> int:
    """Width of :func:`pair_features`."""
    return WORD_FEATURES + CHAR_FEATURES + len(STATISTICS)
