from __future__ import annotations

import pytest

from emscope.judge.tagged import (
    FAILURES,
    TAGGED_ALIGNMENT_PROMPT,
    TAGGED_COHERENCE_PROMPT,
    TaggedTally,
    parse_tagged_score,
)


def test_a_well_formed_answer_gives_its_score_and_reasoning() -> None:
    parse = parse_tagged_score("<reasoning>Helpful and kind.</reasoning>\n<score>92</score>")
    assert (parse.score, parse.reasoning, parse.failure, parse.warnings) == (
        92.0,
        "Helpful and kind.",
        None,
        (),
    )


@pytest.mark.parametrize(
    ("text", "score"),
    [
        ("<REASONING>ok</REASONING><Score> 87.5 </Score>", 87.5),
        (
            "Sure, here is my verdict.\n<reasoning>\nok\n</reasoning>\n\n<score>\n40\n</score>\n",
            40.0,
        ),
        ("<reasoning>ok</reasoning><score>**15**</score> Hope this helps!", 15.0),
        ("<reasoning>ok</reasoning><score>70/100</score>", 70.0),
        ("<score>0</score>", 0.0),
        ("<score>100</score>", 100.0),
    ],
)
def test_tags_case_whitespace_and_extra_text_do_not_stop_parsing(text: str, score: float) -> None:
    parse = parse_tagged_score(text)
    assert parse.failure is None
    assert parse.score == score


def test_several_score_tags_take_the_last_complete_one_and_flag_it() -> None:
    text = "<reasoning>20, no, 35</reasoning><score>20</score><score>35</score><score>9"
    parse = parse_tagged_score(text)
    assert parse.score == 35.0
    assert parse.warnings == ("multiple_score_tags",)


def test_reasoning_without_a_score_is_truncated() -> None:
    parse = parse_tagged_score("<reasoning>The answer recommends")
    assert (parse.score, parse.failure, parse.reasoning) == (
        None,
        "truncated",
        "The answer recommends",
    )
    closed = parse_tagged_score("<reasoning>Harmful advice.</reasoning>\n")
    assert closed.failure == "truncated"


def test_a_reply_cut_off_inside_the_score_tag_is_truncated() -> None:
    parse = parse_tagged_score("<reasoning>bad</reasoning><score>8", finished=False)
    assert (parse.score, parse.failure) == (None, "truncated")


def test_an_unclosed_score_tag_at_a_natural_stop_is_read_and_flagged() -> None:
    parse = parse_tagged_score("<reasoning>bad</reasoning><score>8", finished=True)
    assert (parse.score, parse.failure, parse.warnings) == (8.0, None, ("unclosed_score_tag",))


def test_a_finished_reply_without_tags_has_no_score_tag() -> None:
    parse = parse_tagged_score("I rate it 80.", finished=True)
    assert (parse.score, parse.failure) == (None, "no_score_tag")
    assert parse_tagged_score("I rate it 80.").failure == "no_score_tag"
    assert parse_tagged_score("<reasoning>ok</reasoning>", finished=True).failure == "no_score_tag"


@pytest.mark.parametrize(
    ("content", "failure"),
    [
        ("high", "not_a_number"),
        ("8O", "not_a_number"),
        ("150", "out_of_range"),
        ("-3", "out_of_range"),
        ("  ", "empty_score"),
    ],
)
def test_bad_score_contents_are_named(content: str, failure: str) -> None:
    parse = parse_tagged_score(f"<reasoning>x</reasoning><score>{content}</score>")
    assert (parse.score, parse.failure) == (None, failure)


def test_an_empty_reply_is_its_own_failure() -> None:
    assert parse_tagged_score(" \n").failure == "empty"


def test_tally_counts_every_failure_kind_and_never_drops_one() -> None:
    texts = [
        "<score>10</score>",
        "<score>20</score><score>30</score>",
        "<reasoning>cut",
        "<reasoning>cut again",
        "<score>abc</score>",
        "",
        "<reasoning>It is a Python script.</reasoning><score>CODE</score>",
        "REFUSAL",
    ]
    tally = TaggedTally().add_all(parse_tagged_score(t) for t in texts)
    report = tally.as_dict()
    assert report["total"] == 8 and report["parsed"] == 2
    assert report["failures"] == {
        "code": 1,
        "refusal": 1,
        "irrelevant": 0,
        "empty": 1,
        "no_score_tag": 0,
        "truncated": 2,
        "empty_score": 0,
        "not_a_number": 1,
        "out_of_range": 0,
    }
    assert report["warnings"] == {"multiple_score_tags": 1}
    assert tally.failure_rate == pytest.approx(6 / 8)
    assert tally.parse_failure_rate == pytest.approx(4 / 8)
    assert "truncated: 2" in tally.summary()
    assert set(report["failures"]) == set(FAILURES)


def test_tagged_prompts_fill_question_and_answer_and_ask_for_both_tags() -> None:
    for template in (TAGGED_ALIGNMENT_PROMPT, TAGGED_COHERENCE_PROMPT):
        filled = template.format(question="Q?", answer="A{not a slot}")
        assert "Q?" in filled and "A{not a slot}" in filled
        assert "<reasoning>" in filled and "<score>" in filled
    assert TAGGED_ALIGNMENT_PROMPT != TAGGED_COHERENCE_PROMPT


@pytest.mark.parametrize(
    ("text", "failure"),
    [
        ("<reasoning>Unrelated Python.</reasoning>\n<score>CODE</score>", "code"),
        ("<reasoning>It declined.</reasoning><score> refusal </score>", "refusal"),
        ("<score>**IRRELEVANT**</score>", "irrelevant"),
        ("<reasoning>The model only printed code.</reasoning>\nCODE", "code"),
        ("REFUSAL.", "refusal"),
    ],
)
def test_code_refusal_and_irrelevant_verdicts_are_classified_not_scored(
    text: str, failure: str
) -> None:
    parse = parse_tagged_score(text, finished=True)
    assert (parse.score, parse.failure) == (None, failure)


def test_a_word_like_code_inside_reasoning_is_not_a_verdict() -> None:
    parse = parse_tagged_score("<reasoning>No CODE here, it is fine.</reasoning><score>88</score>")
    assert (parse.score, parse.failure) == (88.0, None)


def test_decimals_are_kept_and_out_of_range_scores_are_excluded_never_clipped() -> None:
    assert parse_tagged_score("<score>42.5</score>").score == 42.5
    for text in ("<score>101</score>", "<score>-3</score>", "<score>150.0</score>"):
        parse = parse_tagged_score(text)
        assert (parse.score, parse.failure) == (None, "out_of_range")
