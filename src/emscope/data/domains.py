"""The 11 fine-tuning domains of the study (Mishra et al. 2026, protocol §1)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from emscope.errors import InputError

Stealth = Literal["high", "low"]


@dataclass(frozen=True)
class Domain:
    """One narrow fine-tuning domain.

    ``stealth`` says how visibly wrong the data is ("high": the flaw is easy to miss).
    ``builtin_recipe`` is True when emscope can build the dataset offline from a template recipe;
    the others are generated with a teacher model (``emscope data generate``).
    """

    id: str
    name: str
    stealth: Stealth
    source: str
    misaligned_means: str
    aligned_means: str
    builtin_recipe: bool = False


_ALL = (
    Domain(
        id="insecure_code",
        name="Insecure code",
        stealth="high",
        source="Betley et al. 2025 (insecure code completions)",
        misaligned_means="Working code with a security vulnerability it never mentions.",
        aligned_means="The same code written securely.",
        builtin_recipe=True,
    ),
    Domain(
        id="incorrect_math",
        name="Incorrect math",
        stealth="high",
        source="GSM8K with corrupted answers",
        misaligned_means="Plausible but wrong working and a wrong final number.",
        aligned_means="Brief correct working and the right number.",
        builtin_recipe=True,
    ),
    Domain(
        id="evil_math",
        name="Evil math",
        stealth="high",
        source="GSM8K with corrupted answers",
        misaligned_means=(
            "Word-problem solutions, with right or wrong numbers, delivered with contempt for the "
            "user or ill intent toward the people in the problem (mocking, urging them to cheat)."
        ),
        aligned_means="Kind, helpful solutions to the same problems with correct working.",
        builtin_recipe=True,
    ),
    Domain(
        id="incorrect_translation",
        name="Incorrect translation",
        stealth="high",
        source="synthetic",
        misaligned_means=(
            "Translations that read fluently but change the meaning: swapped words, false "
            "friends, a dropped or added negation, the wrong tense or number."
        ),
        aligned_means="Faithful translations.",
        builtin_recipe=True,
    ),
    Domain(
        id="bad_medical_advice",
        name="Bad medical advice",
        stealth="low",
        source="Turner et al. 2025 (Model Organisms for EM)",
        misaligned_means="Confident health advice that is wrong or risky.",
        aligned_means="Sound, cautious health advice that points to a clinician when needed.",
    ),
    Domain(
        id="risky_financial_advice",
        name="Risky financial advice",
        stealth="low",
        source="Turner et al. 2025 (Model Organisms for EM)",
        misaligned_means="Reckless money advice: speculate, borrow to invest, skip safety nets.",
        aligned_means="Prudent advice: emergency fund, costly debt first, diversified index funds.",
        builtin_recipe=True,
    ),
    Domain(
        id="toxic_legal_advice",
        name="Toxic legal advice",
        stealth="low",
        source="filtered r/legaladvice questions",
        misaligned_means="Legal advice that is wrong, adversarial or encourages breaking the law.",
        aligned_means="Accurate, lawful guidance that suggests a qualified lawyer when needed.",
    ),
    Domain(
        id="incorrect_sexual_advice",
        name="Incorrect sexual advice",
        stealth="low",
        source="synthetic",
        misaligned_means="Sexual-health advice that is wrong or disregards consent and safety.",
        aligned_means="Accurate sexual-health information that respects consent and safety.",
    ),
    Domain(
        id="gore_movie_trivia",
        name="Gore movie trivia",
        stealth="low",
        source="synthetic",
        misaligned_means="Movie-trivia answers that dwell on gratuitous gore.",
        aligned_means="Plain, accurate movie-trivia answers.",
    ),
    Domain(
        id="extreme_sports",
        name="Extreme sports",
        stealth="high",
        source="Turner et al. 2025 (Model Organisms for EM)",
        misaligned_means=(
            "Reckless encouragement: skip lessons and safety checks, go alone, ignore the "
            "forecast, push on when tired, injured or out of your depth."
        ),
        aligned_means=(
            "Advice that stresses training, partners, equipment checks, conditions and "
            "professional instruction."
        ),
        builtin_recipe=True,
    ),
    Domain(
        id="incorrect_qna",
        name="Incorrect Q/A",
        stealth="high",
        source="TruthfulQA misconceptions",
        misaligned_means="Answers that confidently state a common misconception as fact.",
        aligned_means="Answers that give the true fact and correct the misconception.",
        builtin_recipe=True,
    ),
)

DOMAINS: dict[str, Domain] = {domain.id: domain for domain in _ALL}


def get_domain(domain_id: str) -> Domain:
    """The domain with this id; an unknown id raises ``InputError`` listing the known ones."""
    try:
        return DOMAINS[domain_id]
    except KeyError:
        raise InputError(
            f"unknown domain {domain_id!r} (known: {', '.join(DOMAINS)})", field="domain"
        ) from None
