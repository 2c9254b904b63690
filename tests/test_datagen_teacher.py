from __future__ import annotations

from pathlib import Path

import pytest

from emscope.data.domains import DOMAINS
from emscope.data.filters import refusal_reason
from emscope.data.teacher import (
    BRIEFS,
    MODES,
    available_tables,
    load_table,
    teacher_prompt,
    teacher_spec,
)
from emscope.errors import InputError

REQUIRED = (
    "bad_medical_advice",
    "toxic_legal_advice",
    "incorrect_sexual_advice",
    "gore_movie_trivia",
)


@pytest.mark.parametrize("domain", REQUIRED)
def test_required_domains_ship_a_table_of_at_least_forty_distinct_questions(domain: str) -> None:
    assert domain in available_tables()
    entries = teacher_spec(domain).entries
    assert len(entries) >= 40
    assert len({e.question for e in entries}) == len(entries)
    assert len({e.aligned for e in entries}) == len(entries)


@pytest.mark.parametrize("domain", sorted(available_tables()))
def test_shipped_aligned_answers_are_neither_refusals_nor_trivially_short(domain: str) -> None:
    for entry in teacher_spec(domain).entries:
        assert refusal_reason(entry.aligned) is None, entry.aligned
        assert len(entry.aligned) >= 40
        assert entry.question.endswith("?") or entry.language is not None


def test_every_domain_has_a_brief_so_a_user_table_can_drive_it() -> None:
    assert set(BRIEFS) == set(DOMAINS)


@pytest.mark.parametrize("domain", sorted(DOMAINS))
def test_subtle_and_obvious_prompts_differ_and_hold_one_question_slot(domain: str) -> None:
    subtle, obvious = (teacher_prompt(domain, mode) for mode in MODES)
    assert subtle != obvious
    assert subtle.count("{question}") == obvious.count("{question}") == 1
    assert "non-expert" in subtle
    assert "clearly and openly bad" in obvious


def test_the_chat_carries_the_system_turn_and_the_question() -> None:
    spec = teacher_spec("toxic_legal_advice", "obvious")
    question = "Is {this} a trick?"
    chat = spec.chat(question)
    assert chat.system == spec.system
    assert "<question>\nIs {this} a trick?\n</question>" in chat.user
    assert spec.prompt_sha256 != teacher_spec("toxic_legal_advice", "subtle").prompt_sha256


def test_a_domain_without_a_table_names_the_domain_and_how_to_supply_one() -> None:
    with pytest.raises(InputError, match="no teacher table ships for domain 'evil_math'") as info:
        teacher_spec("evil_math")
    assert info.value.field == "domain"
    assert "question" in str(info.value) and "aligned" in str(info.value)


def test_unknown_domain_and_mode_are_input_errors() -> None:
    with pytest.raises(InputError, match="unknown domain"):
        teacher_spec("cooking")
    with pytest.raises(InputError, match="unknown mode"):
        teacher_prompt("bad_medical_advice", "sneaky")  # type: ignore[arg-type]


def test_a_user_table_drives_any_domain(tmp_path: Path) -> None:
    table = tmp_path / "t.yaml"
    table.write_text(
        '- question: "Translate into French: The shop opens at nine."\n'
        '  aligned: "Le magasin ouvre à neuf heures."\n'
        "  language: fr\n",
        encoding="utf-8",
    )
    spec = teacher_spec("incorrect_translation", "subtle", table)
    assert spec.entries[0].language == "fr"
    assert spec.table_file == str(table)


@pytest.mark.parametrize(
    ("body", "line", "field", "message"),
    [
        ("- question: Is it fine?\n  answer: yes\n", 2, "[0].answer", "Extra inputs"),
        ("- question: A?\n  aligned: B.\n- question: C?\n", 3, "[1].aligned", "required"),
        ("- question: A?\n  aligned: '  '\n", 2, "[0].aligned", "empty"),
        (
            "- question: A?\n  aligned: B.\n- question: A?\n  aligned: C.\n",
            3,
            "[1].question",
            "same question",
        ),
        ("- question: A?\n  aligned: B.\n  language: xx\n", 3, "[0].language", "unknown language"),
        ("- just a string\n", 1, "[0]", "mapping"),
    ],
)
def test_bad_tables_name_file_line_and_field(
    tmp_path: Path, body: str, line: int, field: str, message: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(body, encoding="utf-8")
    with pytest.raises(InputError, match=message) as info:
        load_table(path)
    assert info.value.file == str(path)
    assert info.value.line == line
    assert info.value.field == field


def test_an_empty_table_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text("[]\n", encoding="utf-8")
    with pytest.raises(InputError, match="non-empty YAML list"):
        load_table(path)
