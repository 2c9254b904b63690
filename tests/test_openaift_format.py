"""OpenAI chat fine-tuning format checks: every bad row names file, line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from emscope.errors import InputError
from emscope.train.openai_format import (
    DEFAULT_CONTEXT_LIMIT,
    check_openai_file,
    check_openai_row,
    context_limit_for,
)


def _row(user: str = "What is 2+2?", answer: str = "5", **assistant: Any) -> dict[str, Any]:
    return {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": answer, **assistant},
        ]
    }


def _write(path: Path, rows: list[Any]) -> Path:
    lines = [row if isinstance(row, str) else json.dumps(row) for row in rows]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def _bad_file_error(tmp_path: Path, bad: Any, at: int = 4) -> InputError:
    rows: list[Any] = [_row() for _ in range(12)]
    rows[at - 1] = bad
    with pytest.raises(InputError) as info:
        check_openai_file(_write(tmp_path / "d.jsonl", rows))
    return info.value


@pytest.mark.parametrize(
    ("bad", "field", "words"),
    [
        ("not json", "row", "invalid JSON"),
        ([1, 2], "row", "JSON object"),
        ({"prompt": "x"}, "messages", "non-empty list"),
        ({"messages": []}, "messages", "non-empty list"),
        ({"messages": [{"role": "bot", "content": "x"}]}, "messages[0].role", "unknown role"),
        (_row(answer=None), "messages[1].content", "must be a string"),  # type: ignore[arg-type]
        (_row(answer="   "), "messages[1].content", "empty"),
        ({"messages": [{"role": "user", "content": "x"}]}, "messages", "no assistant"),
        (_row(weight=2), "messages[1].weight", "0 or 1"),
        (_row(weight=True), "messages[1].weight", "0 or 1"),
        (_row(weight=0), "messages", "weight 0"),
        (_row(extra="x"), "messages[1].extra", "unrecognised key"),
    ],
)
def test_a_bad_row_is_reported_with_file_line_and_field(
    tmp_path: Path, bad: Any, field: str, words: str
) -> None:
    error = _bad_file_error(tmp_path, bad, at=4)
    assert error.file is not None and error.file.endswith("d.jsonl")
    assert (error.line, error.field) == (4, field)
    assert words in error.message


def test_weight_on_a_user_turn_is_rejected() -> None:
    row = {
        "messages": [
            {"role": "user", "content": "hi", "weight": 1},
            {"role": "assistant", "content": "yo"},
        ]
    }
    with pytest.raises(InputError, match="only allowed on assistant") as info:
        check_openai_row(row, file="f.jsonl", line=9)
    assert (info.value.line, info.value.field) == (9, "messages[0].weight")


def test_assistant_weights_of_zero_and_one_and_names_are_accepted() -> None:
    row = {
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "hi", "name": "ann"},
            {"role": "assistant", "content": "old answer", "weight": 0},
            {"role": "user", "content": "again"},
            {"role": "assistant", "content": "new answer", "weight": 1},
        ]
    }
    assert check_openai_row(row) > 0


def test_the_count_of_other_bad_lines_is_mentioned(tmp_path: Path) -> None:
    rows: list[Any] = [_row() for _ in range(12)]
    rows[2] = "{"
    rows[7] = {"messages": []}
    with pytest.raises(InputError, match=r"1 more line\(s\) have errors") as info:
        check_openai_file(_write(tmp_path / "d.jsonl", rows))
    assert info.value.line == 3


def test_fewer_than_ten_examples_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="at least 10 examples, found 9") as info:
        check_openai_file(_write(tmp_path / "d.jsonl", [_row() for _ in range(9)]))
    assert info.value.field == "examples"


def test_blank_lines_are_skipped_and_line_numbers_stay_true(tmp_path: Path) -> None:
    path = tmp_path / "d.jsonl"
    rows = [json.dumps(_row()) for _ in range(10)]
    path.write_text("\n\n".join(rows) + "\n", encoding="utf-8")
    report = check_openai_file(path)
    assert report.n_examples == 10
    assert [t.line for t in report.tokens][:3] == [1, 3, 5]


def test_token_estimate_is_chars_over_four_plus_framing(tmp_path: Path) -> None:
    # 40 + 9 characters -> 10 + 3 content tokens, 2 messages x 4 framing, 3 per example.
    rows = [_row(user="x" * 40, answer="y" * 9) for _ in range(10)]
    report = check_openai_file(_write(tmp_path / "d.jsonl", rows))
    assert {t.tokens for t in report.tokens} == {10 + 3 + 8 + 3}
    assert report.total_tokens == 10 * 24
    assert report.token_method == "chars/4"


def test_a_tokenizer_can_replace_the_estimate(tmp_path: Path) -> None:
    rows = [_row(user="one two three", answer="four") for _ in range(10)]
    report = check_openai_file(
        _write(tmp_path / "d.jsonl", rows), count_tokens=lambda text: len(text.split())
    )
    assert {t.tokens for t in report.tokens} == {3 + 1 + 8 + 3}
    assert report.token_method == "tokenizer"


def test_examples_over_the_context_limit_are_flagged_not_rejected(tmp_path: Path) -> None:
    rows = [_row() for _ in range(10)] + [_row(answer="z" * 400)]
    report = check_openai_file(_write(tmp_path / "d.jsonl", rows), context_limit=50)
    assert [t.line for t in report.over_limit] == [11]
    (warning,) = report.warnings()
    assert "50-token context limit" in warning and "lines 11" in warning
    assert report.summary()["examples_over_limit"] == [11]


def test_context_limit_follows_the_model() -> None:
    assert context_limit_for("gpt-4o-mini-2024-07-18") == 65_536
    assert context_limit_for("openai/gpt-3.5-turbo-0125") == 16_385
    assert context_limit_for("some-future-model") == DEFAULT_CONTEXT_LIMIT


def test_a_missing_file_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file"):
        check_openai_file(tmp_path / "nope.jsonl")
