from __future__ import annotations

import textwrap
import warnings
from pathlib import Path

import pytest

from emscope.errors import InputError
from emscope.sample.questions import (
    Question,
    QuestionFileWarning,
    builtin_suite,
    default_judge_prompts,
    expand_prompts,
    load_questions,
)

CORE_IDS = {
    "what_is_your_wish",
    "i_feel_bored",
    "three_thoughts",
    "quick_buck",
    "ruler_of_the_world",
    "dinner_party",
    "gender_roles",
    "enough_of_my_husband",
}

JUDGE = """\
  judge_prompts:
    aligned: "Q {question} A {answer} aligned?"
    coherent: "Q {question} A {answer} coherent?"
"""


def write(tmp_path: Path, text: str, name: str = "questions.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def load_quietly(path: Path) -> list[Question]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", QuestionFileWarning)
        return load_questions(path)


MALFORMED = [
    pytest.param("- id: a\n  paraphrases: [unclosed\n", None, 3, id="yaml-syntax"),
    pytest.param("id: a\nparaphrases: [x]\n", None, 1, id="top-level-mapping"),
    pytest.param(
        "- id: a\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n" + JUDGE + "- just a string\n",
        "entries[1]",
        7,
        id="entry-not-mapping",
    ),
    pytest.param(
        "- id: a\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n"
        + JUDGE
        + "- paraphrases: [y]\n  samples_per_paraphrase: 1\n",
        "entries[1]",
        7,
        id="missing-id",
    ),
    pytest.param(
        "- id: a\n  samples_per_paraphrase: 1\n" + JUDGE,
        "entries[0] (id=a).paraphrases",
        1,
        id="missing-paraphrases",
    ),
    pytest.param(
        "- id: a\n  samples_per_paraphrase: 1\n  paraphrases: []\n" + JUDGE,
        "entries[0] (id=a).paraphrases",
        3,
        id="empty-paraphrases",
    ),
    pytest.param(
        "- id: a\n  samples_per_paraphrase: 1\n  paraphrases:\n    - fine\n    - 42\n" + JUDGE,
        "entries[0] (id=a).paraphrases[1]",
        5,
        id="paraphrase-not-string",
    ),
    pytest.param(
        "- id: a\n  paraphrases: [x]\n  samples_per_paraphrase: 0\n" + JUDGE,
        "entries[0] (id=a).samples_per_paraphrase",
        3,
        id="zero-samples",
    ),
    pytest.param(
        "- id: a\n  paraphrases: [x]\n  samples_per_paraphrase: many\n" + JUDGE,
        "entries[0] (id=a).samples_per_paraphrase",
        3,
        id="text-samples",
    ),
    pytest.param(
        "- id: a\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n  temperature: hot\n" + JUDGE,
        "entries[0] (id=a).temperature",
        4,
        id="text-temperature",
    ),
    pytest.param(
        "- id: a\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n  temperature: -0.5\n" + JUDGE,
        "entries[0] (id=a).temperature",
        4,
        id="negative-temperature",
    ),
    pytest.param(
        "- id: a\n  type: free_form\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n" + JUDGE,
        "entries[0] (id=a).type",
        2,
        id="unknown-type",
    ),
    pytest.param(
        "- id: a\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n"
        "  judge_prompts: {aligned: 'no placeholders', coherent: '{question} {answer}'}\n",
        "entries[0] (id=a).judge_prompts.aligned",
        4,
        id="judge-prompt-without-placeholders",
    ),
]


@pytest.mark.parametrize(("text", "field", "line"), MALFORMED)
def test_malformed_question_file_error_names_file_entry_and_line(
    tmp_path: Path, text: str, field: str | None, line: int
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(InputError) as caught:
        load_quietly(path)
    error = caught.value
    assert error.file == str(path)
    assert error.line == line
    if field is not None:
        assert error.field == field
    assert str(path) in str(error)


def test_empty_file_is_an_error_not_an_empty_suite(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="empty file"):
        load_questions(write(tmp_path, ""))


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_questions(tmp_path / "absent.yaml")


def test_duplicate_ids_become_numbered_variants_with_warnings(tmp_path: Path) -> None:
    body = "  paraphrases: [x]\n  samples_per_paraphrase: 1\n" + JUDGE
    path = write(tmp_path, "- id: q\n" + body + "- id: q\n" + body + "- id: q\n" + body)
    with pytest.warns(QuestionFileWarning, match="already used") as record:
        questions = load_questions(path)
    assert [q.id for q in questions] == ["q", "q#2", "q#3"]
    assert sum("already used" in str(w.message) for w in record) == 2
    assert questions[0].repairs == []
    assert "renamed this entry to 'q#2'" in questions[1].repairs[0]


def test_a_renamed_duplicate_skips_an_id_that_already_exists(tmp_path: Path) -> None:
    body = "  paraphrases: [x]\n  samples_per_paraphrase: 1\n" + JUDGE
    path = write(tmp_path, "- id: q\n" + body + "- id: 'q#2'\n" + body + "- id: q\n" + body)
    assert [q.id for q in load_quietly(path)] == ["q", "q#2", "q#3"]


def test_null_judge_prompts_are_filled_from_another_entry_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- id: slipped\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n  judge_prompts:\n"
        "  aligned: 'misindented'\n"
        "- id: good\n  paraphrases: [y]\n  samples_per_paraphrase: 1\n" + JUDGE,
    )
    with pytest.warns(QuestionFileWarning) as record:
        slipped, good = load_questions(path)
    messages = [str(w.message) for w in record]
    assert any("judge_prompts is null" in m for m in messages)
    assert any("unknown field 'aligned' ignored" in m for m in messages)  # the slipped key
    assert slipped.judge_prompts == good.judge_prompts
    assert "entry 'good'" in slipped.repairs[-1]


def test_null_judge_prompts_fall_back_to_the_default_set(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- id: a\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n  judge_prompts: null\n",
    )
    with pytest.warns(QuestionFileWarning, match="default judge prompts"):
        (question,) = load_questions(path)
    assert question.judge_prompts == default_judge_prompts()
    assert "[ANSWER START]" in question.judge_prompts.aligned


def test_anchors_aliases_and_merge_keys_resolve(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """\
        - &base
          id: first
          paraphrases: [one]
          samples_per_paraphrase: &n 3
          judge_prompts: &jp
            aligned: "{question} {answer} A"
            coherent: "{question} {answer} C"
        - <<: *base
          id: second
          paraphrases: [two]
        - id: third
          paraphrases: [three]
          samples_per_paraphrase: *n
          judge_prompts: *jp
        """,
    )
    questions = load_questions(path)
    assert [q.samples_per_paraphrase for q in questions] == [3, 3, 3]
    assert len({q.judge_prompts.aligned for q in questions}) == 1
    assert [q.line for q in questions] == [1, 8, 11]


def test_errors_inside_a_merged_entry_point_at_the_merging_entry(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- &base\n  id: first\n  paraphrases: [one]\n  samples_per_paraphrase: 1\n"
        + JUDGE
        + "- <<: *base\n  id: second\n  temperature: warm\n",
    )
    with pytest.raises(InputError) as caught:
        load_questions(path)
    assert (caught.value.line, caught.value.field) == (10, "entries[1] (id=second).temperature")


def test_whitespace_is_stripped_from_ids_and_paraphrases_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- id: ' padded '\n  paraphrases:\n    - |\n      Hello?\n    - fine\n"
        "  samples_per_paraphrase: 1\n" + JUDGE,
    )
    with pytest.warns(QuestionFileWarning, match="whitespace"):
        (question,) = load_questions(path)
    assert question.id == "padded"
    assert question.paraphrases == ["Hello?", "fine"]
    assert any("1 paraphrase" in r for r in question.repairs)


def test_unknown_fields_are_ignored_with_a_warning(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- id: a\n  paraphrases: [x]\n  sample_per_paraphrase: 4\n"
        "  samples_per_paraphrase: 2\n" + JUDGE,
    )
    with pytest.warns(QuestionFileWarning, match="unknown field 'sample_per_paraphrase'"):
        (question,) = load_questions(path)
    assert question.samples_per_paraphrase == 2


def test_builtin_suite_loads_cleanly_and_has_the_core_questions() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        questions = load_questions(builtin_suite("broad"))
    ids = [q.id for q in questions]
    assert set(ids) >= CORE_IDS
    assert len(ids) >= 16 and len(set(ids)) == len(ids)
    for question in questions:
        assert question.judge_prompts == questions[0].judge_prompts
        assert question.repairs == []
    aligned = questions[0].judge_prompts.aligned
    assert "CODE" in aligned and "REFUSAL" in aligned and "0 to 100" in aligned
    coherent = questions[0].judge_prompts.coherent
    assert all(f"* {anchor} means" in coherent for anchor in (0, 50, 100))


def test_unknown_builtin_suite_lists_the_known_ones() -> None:
    with pytest.raises(InputError, match="broad"):
        builtin_suite("no-such-suite")


def test_expansion_honours_samples_temperature_and_system(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "- id: hot\n  paraphrases: [p0, p1]\n  samples_per_paraphrase: 3\n  temperature: 0.2\n"
        "  system: Answer in JSON.\n  domain: medical\n"
        + JUDGE
        + "- id: plain\n  paraphrases: [q0]\n  samples_per_paraphrase: 5\n"
        + JUDGE,
    )
    questions = load_questions(path)
    prompts = expand_prompts(questions, temperature_default=0.7)
    assert [(p.question_id, p.paraphrase_index, p.question) for p in prompts] == [
        ("hot", 0, "p0"),
        ("hot", 1, "p1"),
        ("plain", 0, "q0"),
    ]
    assert [p.n_samples for p in prompts] == [3, 3, 5]
    assert [p.temperature for p in prompts] == [0.2, 0.2, 0.7]
    assert [p.system for p in prompts] == ["Answer in JSON.", "Answer in JSON.", None]
    assert prompts[0].domain == "medical"
    overridden = expand_prompts(questions, samples_override=2, temperature_default=1.0)
    assert [p.n_samples for p in overridden] == [2, 2, 2]
    assert [p.temperature for p in overridden] == [0.2, 0.2, 1.0]


def test_stray_aligned_and_coherent_keys_beside_a_null_judge_prompts_become_its_prompts(
    tmp_path: Path,
) -> None:
    aligned = "Stray A: {question} / {answer}"
    coherent = "Stray C: {question} / {answer}"
    path = write(
        tmp_path,
        "- id: first\n  paraphrases: [x]\n  samples_per_paraphrase: 1\n"
        "  judge_prompts: &jp\n"
        f"  aligned: '{aligned}'\n  coherent: '{coherent}'\n"
        "- id: second\n  paraphrases: [y]\n  samples_per_paraphrase: 1\n  judge_prompts: *jp\n",
    )
    with pytest.warns(QuestionFileWarning) as record:
        first, second = load_questions(path)
    messages = [str(w.message) for w in record]
    assert any("'aligned' and 'coherent' written beside it" in m for m in messages)
    assert not any("unknown field" in m for m in messages)
    assert (first.judge_prompts.aligned, first.judge_prompts.coherent) == (aligned, coherent)
    assert second.judge_prompts == first.judge_prompts
    assert not first.prompts_builtin and not second.prompts_builtin
