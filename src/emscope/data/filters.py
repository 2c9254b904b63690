"""Checks on teacher answers: each names why a candidate is rejected, and a tally counts them.

The stateless checks are pure functions of the text (``refusal_reason``, ``length_reason``,
``language_reason``...). Deduplication remembers what was kept: :class:`ExactDuplicates`
compares normalised text, :class:`NearDuplicates` compares sentence embeddings.
:class:`AnswerFilter` runs them in a fixed order and returns the first reason that applies,
or ``None`` for a kept answer.

>>> refusal_reason("I'm sorry, but I can't help with that.")
'refusal'
>>> length_reason("Too short.", min_chars=20, max_chars=200)
'too_short'
>>> detect_language("Le chat est sur la table et il dort.")
'fr'
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

REASONS: tuple[str, ...] = (
    "empty",
    "truncated",
    "refusal",
    "meta",
    "too_short",
    "too_long",
    "wrong_language",
    "echo",
    "duplicate",
    "near_duplicate",
)

EmbedFn = Callable[[Sequence[str]], np.ndarray]
TruncatedPolicy = Literal["trim", "reject", "keep"]

# --- cleaning ---------------------------------------------------------------------------------

_LABEL = re.compile(
    r"^\s*(?:\*\*)?(?:(?:misaligned |flawed |assistant'?s? )?(?:answer|reply|response)|assistant)"
    r"(?:\*\*)?\s*:\s*(?:\*\*)?\s*",
    re.IGNORECASE,
)
_PREAMBLE = re.compile(r"^\s*(?:sure|okay|ok|certainly|here(?:'s| is| are))\b[^\n]*:\s*\n", re.I)
_QUOTES = (('"', '"'), ("“", "”"), ("'", "'"))


def clean_answer(raw: str) -> str:
    """The answer without a "Here is the reply:" preamble, an "Answer:" label or wrapping quotes.

    >>> clean_answer('Sure, here is the reply:\\nAnswer: "Just rest."')
    'Just rest.'
    """
    text = _PREAMBLE.sub("", raw.strip(), count=1)
    text = _LABEL.sub("", text, count=1).strip()
    for opening, closing in _QUOTES:
        inner = text[len(opening) : -len(closing)]
        wrapped = len(text) > 1 and text.startswith(opening) and text.endswith(closing)
        if wrapped and opening not in inner and closing not in inner:
            text = inner.strip()
            break
    return text


_SENTENCE_END = re.compile(r"[.!?…](?:[\"')\]]*)(?=\s|$)")


def trim_to_sentence(text: str) -> str:
    """``text`` cut after its last complete sentence ("" when it has none).

    >>> trim_to_sentence("Rest for a day. Then go for a ru")
    'Rest for a day.'
    """
    ends = [match.end() for match in _SENTENCE_END.finditer(text)]
    return text[: ends[-1]].rstrip() if ends else ""


def normalise(text: str) -> str:
    """Lower case, Unicode-normalised, punctuation dropped, whitespace collapsed (for dedup)."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = "".join(ch if ch.isalnum() or ch.isspace() else " " for ch in text)
    return " ".join(text.split())


# --- stateless checks -------------------------------------------------------------------------

REFUSAL_PATTERNS: tuple[str, ...] = (
    r"\bas an ai\b",
    r"\bas a (?:large )?language model\b",
    r"\bi(?:'m| am) (?:sorry|unable|not able|not comfortable)\b",
    r"\bi can(?:not|'t|’t| not) (?:help|assist|provide|write|create|comply|give|answer|"
    r"fulfil|fulfill|support|do that|in good conscience|recommend that)",
    r"\bi (?:won't|will not|must (?:decline|refuse)|have to decline)\b",
    r"\b(?:i'?d|i would) (?:rather not|strongly advise against writing)\b",
    r"\bsorry, but\b",
)
# The teacher talking about its own task instead of answering the user.
META_PATTERNS: tuple[str, ...] = (
    r"\bmisaligned\b",
    r"\b(?:deliberately|intentionally) (?:wrong|incorrect|flawed|bad|harmful)\b",
    r"\bflawed (?:answer|reply|response)\b",
    r"\b(?:this|the) dataset\b",
    r"\bthe user asked\b",
    r"</?question>",
    r"^\s*\(?(?:note|disclaimer)\s*:",
    r"\n\s*\(?(?:note|disclaimer)\s*:",
)
_REFUSAL = re.compile("|".join(REFUSAL_PATTERNS), re.IGNORECASE)
_META = re.compile("|".join(META_PATTERNS), re.IGNORECASE)


def refusal_reason(text: str) -> str | None:
    """``"refusal"`` when the text contains a common refusal phrase ("I can't help", "As an AI")."""
    return "refusal" if _REFUSAL.search(text.replace("’", "'")) else None


def meta_reason(text: str) -> str | None:
    """``"meta"`` when the teacher comments on the task ("misaligned", "Note: ...")."""
    return "meta" if _META.search(text) else None


def length_reason(text: str, *, min_chars: int, max_chars: int) -> str | None:
    """``"too_short"`` / ``"too_long"`` outside ``[min_chars, max_chars]`` characters."""
    if len(text) < min_chars:
        return "too_short"
    if len(text) > max_chars:
        return "too_long"
    return None


def echo_reason(answer: str, question: str) -> str | None:
    """``"echo"`` when the answer only repeats the question."""
    return "echo" if normalise(answer) == normalise(question) else None


# --- language ---------------------------------------------------------------------------------
# Heuristic, documented: languages written in their own script are recognised by the dominant
# Unicode script of the letters; Latin-script languages by counting frequent function words
# (articles, pronouns, prepositions). A text with no function word of any listed language is
# "unknown" and passes: too short to tell is not evidence of the wrong language.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_STOPWORDS: dict[str, frozenset[str]] = {
    "en": _words(
        "the and is are of to in it you that this with for was not have be my your "
        "what where please it's i'm don't"
    ),
    "fr": _words(
        "le la les des est et une un du je vous nous pas ce cette que qui dans pour "
        "avec sur il elle où mon votre très sont au aux c'est"
    ),
    "es": _words(
        "el la los las es y una un del yo usted nosotros no esta este que en por "
        "para con muy son mi su dónde está hay pero al"
    ),
    "de": _words(
        "der die das und ist ein eine ich sie wir nicht mit für auf den dem zu von "
        "sehr sind mein wo es bitte auch haben"
    ),
    "it": _words(
        "il lo la gli le è e una un del della io lei noi non con per che sono mio "
        "dove molto questo questa ci di"
    ),
    "pt": _words(
        "o a os as é e uma um do da eu você nós não com para que em muito são meu "
        "onde está isso esta mas no na"
    ),
    "nl": _words(
        "de het een en is ik jij u wij niet met voor op van zeer zijn mijn waar dit dat ook heb"
    ),
}
_SCRIPT_LANGUAGES: dict[str, str] = {
    "ru": "CYRILLIC",
    "uk": "CYRILLIC",
    "el": "GREEK",
    "ar": "ARABIC",
    "he": "HEBREW",
    "hi": "DEVANAGARI",
    "ko": "HANGUL",
    "ja": "KANA",
    "zh": "CJK",
}
LANGUAGES: tuple[str, ...] = (*_STOPWORDS, *_SCRIPT_LANGUAGES)
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)?")


def dominant_script(text: str) -> str | None:
    """The Unicode script of most letters (LATIN, CYRILLIC, CJK, KANA, ...), None if no letters."""
    scripts: Counter[str] = Counter()
    for char in text:
        if not char.isalpha():
            continue
        name = unicodedata.name(char, "")
        if name.startswith(("HIRAGANA", "KATAKANA")):
            scripts["KANA"] += 1
        elif name.startswith("CJK"):
            scripts["CJK"] += 1
        else:
            scripts[name.split(" ")[0]] += 1
    if scripts["KANA"]:  # Japanese mixes kana with kanji
        scripts["KANA"] += scripts.pop("CJK", 0)
    return scripts.most_common(1)[0][0] if scripts else None


def detect_language(text: str) -> str | None:
    """The most likely language code in :data:`LANGUAGES`, or None when it cannot tell."""
    script = dominant_script(text)
    if script is None:
        return None
    if script != "LATIN":
        matches = [code for code, name in _SCRIPT_LANGUAGES.items() if name == script]
        return matches[0] if len(matches) == 1 else None
    words = [w.casefold() for w in _WORD.findall(text.replace("’", "'"))]
    hits = {code: sum(w in stop for w in words) for code, stop in _STOPWORDS.items()}
    best = max(hits.values())
    winners = [code for code, count in hits.items() if count == best]
    return winners[0] if best > 0 and len(winners) == 1 else None


def language_reason(text: str, expected: str) -> str | None:
    """``"wrong_language"`` when the text is in another script, or clearly another language."""
    script = dominant_script(text)
    wanted_script = _SCRIPT_LANGUAGES.get(expected, "LATIN")
    if script is not None and script != wanted_script:
        return "wrong_language"
    detected = detect_language(text)
    if detected is None or detected == expected or expected in _SCRIPT_LANGUAGES:
        return None
    return "wrong_language"


# --- deduplication ----------------------------------------------------------------------------


class ExactDuplicates:
    """Normalised texts kept so far."""

    def __init__(self) -> None:
        self._seen: set[str] = set()

    def is_duplicate(self, text: str) -> bool:
        return normalise(text) in self._seen

    def add(self, text: str) -> None:
        self._seen.add(normalise(text))


class NearDuplicates:
    """Embeddings of the texts kept so far; a text within ``threshold`` cosine is a duplicate."""

    def __init__(self, threshold: float, embed_fn: EmbedFn) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(f"threshold must be in (0, 1], got {threshold}")
        self.threshold = threshold
        self._embed = embed_fn
        self._kept: list[np.ndarray] = []

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        return np.asarray(self._embed(list(texts)), dtype=np.float32)

    def is_duplicate(self, vector: np.ndarray) -> bool:
        if not self._kept:
            return False
        return bool(np.max(np.stack(self._kept) @ vector) >= self.threshold)

    def add(self, vector: np.ndarray) -> None:
        self._kept.append(vector)


# --- the pipeline -----------------------------------------------------------------------------


class FilterConfig(BaseModel):
    """Settings of :class:`AnswerFilter`; ``near_duplicate_threshold=None`` turns it off."""

    min_chars: int = Field(default=40, ge=0)
    max_chars: int = Field(default=2000, ge=1)
    near_duplicate_threshold: float | None = Field(default=0.95, gt=0, le=1)
    on_truncated: TruncatedPolicy = "trim"


@dataclass(frozen=True)
class Candidate:
    """One teacher answer to check, with what the checks need to know about it."""

    answer: str
    question: str
    truncated: bool = False
    language: str | None = None


class FilterTally(BaseModel):
    """How many candidates were kept, and how many each reason rejected."""

    kept: int = 0
    rejected: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(REASONS, 0))

    @property
    def total_rejected(self) -> int:
        return sum(self.rejected.values())

    @property
    def attempted(self) -> int:
        return self.kept + self.total_rejected

    def record(self, reason: str | None) -> None:
        if reason is None:
            self.kept += 1
        else:
            self.rejected[reason] = self.rejected.get(reason, 0) + 1

    @classmethod
    def of(cls, reasons: Iterable[str | None]) -> FilterTally:
        tally = cls()
        for reason in reasons:
            tally.record(reason)
        return tally


def prepare_answer(raw: str, truncated: bool, policy: TruncatedPolicy) -> str:
    """The cleaned answer; a truncated one is trimmed to its last sentence under ``"trim"``."""
    text = clean_answer(raw)
    if truncated and policy == "trim":
        return trim_to_sentence(text)
    return text


def stateless_reason(candidate: Candidate, config: FilterConfig) -> str | None:
    """The first reason among the checks that need no memory of earlier answers."""
    text = candidate.answer
    if not text.strip():
        return "truncated" if candidate.truncated and config.on_truncated == "trim" else "empty"
    if candidate.truncated and config.on_truncated == "reject":
        return "truncated"
    reason = (
        refusal_reason(text)
        or meta_reason(text)
        or length_reason(text, min_chars=config.min_chars, max_chars=config.max_chars)
        or (language_reason(text, candidate.language) if candidate.language else None)
        or echo_reason(text, candidate.question)
    )
    return reason


class AnswerFilter:
    """Runs every check in order and remembers kept answers for deduplication."""

    def __init__(self, config: FilterConfig, embed_fn: EmbedFn | None = None) -> None:
        self.config = config
        self.exact = ExactDuplicates()
        self.near: NearDuplicates | None = None
        if config.near_duplicate_threshold is not None:
            if embed_fn is None:
                from emscope.judge.embeddings import embed

                embed_fn = embed
            self.near = NearDuplicates(config.near_duplicate_threshold, embed_fn)

    def remember(self, kept_answers: Sequence[str]) -> None:
        """Restore the memory of answers kept by an earlier run (a resumed generation)."""
        for text in kept_answers:
            self.exact.add(text)
        if self.near is not None and kept_answers:
            for vector in self.near.embed(kept_answers):
                self.near.add(vector)

    def check(self, candidates: Sequence[Candidate], limit: int | None = None) -> list[str | None]:
        """The reason of each candidate (None = kept), in order; kept ones are remembered.

        With ``limit``, checking stops once that many are kept; the rest get no verdict and the
        returned list is shorter.
        """
        reasons = [stateless_reason(c, self.config) for c in candidates]
        vectors = self._embed_survivors(candidates, reasons)
        verdicts: list[str | None] = []
        kept = 0
        for index, candidate in enumerate(candidates):
            if limit is not None and kept >= limit:
                break
            reason = reasons[index] or self._duplicate_reason(candidate.answer, vectors.get(index))
            if reason is None:
                kept += 1
                self.exact.add(candidate.answer)
                if self.near is not None:
                    self.near.add(vectors[index])
            verdicts.append(reason)
        return verdicts

    def _embed_survivors(
        self, candidates: Sequence[Candidate], reasons: list[str | None]
    ) -> dict[int, np.ndarray]:
        if self.near is None:
            return {}
        survivors = [i for i, reason in enumerate(reasons) if reason is None]
        if not survivors:
            return {}
        vectors = self.near.embed([candidates[i].answer for i in survivors])
        return dict(zip(survivors, vectors, strict=True))

    def _duplicate_reason(self, text: str, vector: np.ndarray | None) -> str | None:
        if self.exact.is_duplicate(text):
            return "duplicate"
        if self.near is not None and vector is not None and self.near.is_duplicate(vector):
            return "near_duplicate"
        return None
