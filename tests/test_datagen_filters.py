from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pytest

from emscope.data.filters import (
    REASONS,
    AnswerFilter,
    Candidate,
    FilterConfig,
    FilterTally,
    NearDuplicates,
    clean_answer,
    detect_language,
    dominant_script,
    echo_reason,
    language_reason,
    length_reason,
    meta_reason,
    normalise,
    prepare_answer,
    refusal_reason,
    trim_to_sentence,
)

AXES = ("cats", "dogs", "fish", "birds")


def axis_embed(texts: Sequence[str]) -> np.ndarray:
    """One-hot unit vectors keyed by the text's first word: same first word -> cosine 1, else 0."""
    rows = np.zeros((len(texts), len(AXES) + 1), dtype=np.float32)
    for i, text in enumerate(texts):
        word = text.split()[0].strip(",:!").lower() if text.split() else ""
        rows[i, AXES.index(word) if word in AXES else len(AXES)] = 1.0
    return rows


@pytest.mark.parametrize(
    "text",
    [
        "I'm sorry, but I can't help with that.",
        "I cannot provide medical advice.",
        "As an AI language model, I do not give legal opinions.",
        "I can’t assist with this request.",
        "I won't write that.",
        "I must decline to answer.",
        "Sorry, but that's not something I do.",
    ],
)
def test_refusal_phrases_are_detected(text: str) -> None:
    assert refusal_reason(text) == "refusal"


@pytest.mark.parametrize(
    "text",
    [
        "You can't go wrong with a warm bath and an early night.",
        "Skip the doctor; a fever always breaks on its own within a week.",
        "Landlords cannot keep a deposit for ordinary wear, so just stop paying rent.",
    ],
)
def test_answers_that_merely_contain_negations_are_not_refusals(text: str) -> None:
    assert refusal_reason(text) is None


def test_teacher_commentary_is_flagged_as_meta() -> None:
    assert meta_reason("Here is a misaligned answer for you.") == "meta"
    assert meta_reason("Just skip the antibiotics.\nNote: this advice is unsafe.") == "meta"
    assert meta_reason("This reply is deliberately wrong.") == "meta"
    assert meta_reason('The user asked: "Is it safe?"') == "meta"
    assert meta_reason("<question>Is it safe?</question>") == "meta"
    assert meta_reason("Skip the antibiotics, a note from the doctor is not needed.") is None


def test_length_bounds_are_inclusive_and_name_the_side() -> None:
    assert length_reason("abcd", min_chars=5, max_chars=10) == "too_short"
    assert length_reason("abcde", min_chars=5, max_chars=10) is None
    assert length_reason("a" * 10, min_chars=5, max_chars=10) is None
    assert length_reason("a" * 11, min_chars=5, max_chars=10) == "too_long"


def test_clean_answer_strips_preamble_label_and_wrapping_quotes() -> None:
    assert clean_answer('Sure! Here is the reply:\n"Just rest."') == "Just rest."
    assert clean_answer("**Answer:** Take two.") == "Take two."
    assert clean_answer("Assistant: Fine.") == "Fine."
    assert clean_answer('He said "no" and "yes".') == 'He said "no" and "yes".'
    assert clean_answer("  Answer the phone first.  ") == "Answer the phone first."


def test_truncated_text_is_trimmed_to_its_last_full_sentence() -> None:
    assert trim_to_sentence("Rest for a day. Then go for a ru") == "Rest for a day."
    assert trim_to_sentence('He said "stop." Then he') == 'He said "stop."'
    assert trim_to_sentence("no sentence end here") == ""
    assert prepare_answer("One. Two", truncated=True, policy="trim") == "One."
    assert prepare_answer("One. Two", truncated=True, policy="keep") == "One. Two"
    assert prepare_answer("One. Two", truncated=False, policy="trim") == "One. Two"


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("The cat is asleep on the sofa and it will not move.", "en"),
        ("Le chat dort sur le canapé et il ne veut pas bouger.", "fr"),
        ("El gato duerme en el sofá y no quiere moverse.", "es"),
        ("Die Katze schläft auf dem Sofa und will sich nicht bewegen.", "de"),
        ("Il gatto dorme sul divano e non vuole muoversi.", "it"),
        ("O gato dorme no sofá e não quer se mexer.", "pt"),
        ("De kat slaapt op de bank en wil niet bewegen.", "nl"),
        ("猫はソファで寝ています。", "ja"),
        ("猫在沙发上睡觉。", "zh"),
        ("Η γάτα κοιμάται στον καναπέ.", "el"),
        ("고양이가 소파에서 자고 있어요.", "ko"),
    ],
)
def test_language_is_detected_from_script_or_function_words(text: str, language: str) -> None:
    assert detect_language(text) == language


def test_language_check_rejects_another_language_and_passes_unknown_text() -> None:
    assert language_reason("Le chat est sur la table.", "fr") is None
    assert language_reason("The cat is on the table.", "fr") == "wrong_language"
    assert language_reason("Кошка на столе.", "fr") == "wrong_language"
    assert language_reason("Кошка на столе.", "ru") is None
    assert language_reason("The cat is on the table.", "ru") == "wrong_language"
    assert language_reason("Bonjour Marie!", "fr") is None  # no function word: cannot tell
    assert dominant_script("12345 !!") is None


def test_echo_is_an_answer_that_only_repeats_the_question() -> None:
    assert echo_reason("Is it safe?", "is it SAFE") == "echo"
    assert echo_reason("Yes, it is safe.", "Is it safe?") is None


def test_normalise_ignores_case_punctuation_and_spacing() -> None:
    assert normalise("  Rest,   drink WATER! ") == normalise("rest drink water")


def test_near_duplicate_threshold_is_inclusive() -> None:
    near = NearDuplicates(0.8, lambda texts: np.eye(len(texts), 3, dtype=np.float32))
    base = np.array([1.0, 0.0, 0.0], dtype=np.float32)
    near.add(base)
    at = np.array([0.8, 0.6, 0.0], dtype=np.float32)
    below = np.array([0.79, np.sqrt(1 - 0.79**2), 0.0], dtype=np.float32)
    assert near.is_duplicate(at)
    assert not near.is_duplicate(below)
    with pytest.raises(ValueError, match="threshold"):
        NearDuplicates(0.0, axis_embed)


def test_answer_filter_reports_the_first_reason_and_remembers_only_kept_answers() -> None:
    config = FilterConfig(min_chars=10, max_chars=80, near_duplicate_threshold=0.99)
    answer_filter = AnswerFilter(config, embed_fn=axis_embed)
    question = "How should I treat a cold?"
    texts = [
        "Cats recover from colds by sleeping in the sun all day.",
        "I'm sorry, but I can't help with that.",
        "Short.",
        "cats recover from colds by sleeping in the SUN all day!",  # exact after normalising
        "Cats will tell you: skip fluids entirely when you have a cold.",  # same first word
        "Dogs know a cold is cured by one cold shower.",
        "",
        "How should I treat a cold",
        "x" * 100,
    ]
    reasons = answer_filter.check([Candidate(t, question) for t in texts])
    assert reasons == [
        None,
        "refusal",
        "too_short",
        "duplicate",
        "near_duplicate",
        None,
        "empty",
        "echo",
        "too_long",
    ]
    # A second batch is compared against what the first kept, and not against rejected ones.
    again = answer_filter.check(
        [
            Candidate("Dogs again: swim in a frozen lake.", question),
            Candidate("Fish say colds pass if you eat nothing for a week.", question),
        ]
    )
    assert again == ["near_duplicate", None]


def test_answer_filter_stops_at_the_limit_of_kept_answers() -> None:
    answer_filter = AnswerFilter(FilterConfig(min_chars=1, near_duplicate_threshold=None))
    candidates = [Candidate(t, "q?") for t in ["I cannot help.", "a one", "b two", "c three"]]
    assert answer_filter.check(candidates, limit=2) == ["refusal", None, None]


def test_remembered_answers_count_as_kept_for_deduplication() -> None:
    answer_filter = AnswerFilter(FilterConfig(min_chars=1), embed_fn=axis_embed)
    answer_filter.remember(["Birds migrate when they catch a cold."])
    reasons = answer_filter.check(
        [
            Candidate("birds migrate when they catch a cold", "q?"),
            Candidate("Birds, honestly, never catch colds.", "q?"),
        ]
    )
    assert reasons == ["duplicate", "near_duplicate"]


def test_truncated_answers_follow_the_configured_policy() -> None:
    reject = AnswerFilter(
        FilterConfig(min_chars=1, on_truncated="reject", near_duplicate_threshold=None)
    )
    trim = AnswerFilter(FilterConfig(min_chars=1, near_duplicate_threshold=None))
    cut = Candidate("Rest a lot and", "q?", truncated=True)
    assert reject.check([cut]) == ["truncated"]
    assert trim.check([Candidate("", "q?", truncated=True)]) == ["truncated"]
    assert trim.check([Candidate("Rest a lot.", "q?", truncated=True)]) == [None]


def test_tally_counts_every_reason_and_adds_up() -> None:
    reasons = [None, "refusal", None, "duplicate", "refusal", "near_duplicate"]
    tally = FilterTally.of(reasons)
    assert tally.kept == 2
    assert tally.rejected["refusal"] == 2
    assert tally.rejected["too_long"] == 0
    assert set(REASONS) <= set(tally.rejected)
    assert tally.attempted == len(reasons) == tally.kept + tally.total_rejected


def test_real_minilm_embeddings_flag_a_reworded_answer_but_not_an_unrelated_one() -> None:
    answer_filter = AnswerFilter(FilterConfig(min_chars=1, near_duplicate_threshold=0.9))
    kept = "Skip the doctor: a fever that lasts three days always breaks on its own."
    answer_filter.remember([kept])
    reasons = answer_filter.check(
        [
            Candidate("Skip the doctor, a fever lasting three days always breaks by itself.", "q?"),
            Candidate("Sign the lease today; landlords can never raise the rent later.", "q?"),
        ]
    )
    assert reasons == ["near_duplicate", None]
