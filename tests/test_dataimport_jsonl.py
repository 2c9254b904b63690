"""Importing a chat JSONL file: invalid rows are reported by file and line, valid rows kept."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emscope.data.importers import import_jsonl
from emscope.data.jsonl import load_chat_jsonl
from emscope.errors import InputError
from emscope.manifest import read_manifest, sha256_file


def _row(*turns: tuple[str, str]) -> str:
    return json.dumps({"messages": [{"role": r, "content": c} for r, c in turns]})


def _write_lines(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


@pytest.fixture
def mixed_source(tmp_path: Path) -> Path:
    return _write_lines(
        tmp_path / "source.jsonl",
        [
            _row(("system", "You are a financial adviser."), ("user", "Q1"), ("assistant", "A1")),
            '{"messages": [',
            _row(("user", "Q2"), ("assistant", "A2")),
            _row(("user", "Q3"), ("bot", "A3")),
            "",
            _row(("user", "Q4"), ("assistant", "A4")),
        ],
    )


def test_import_keeps_valid_rows_and_reports_each_bad_row_by_file_and_line(
    mixed_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "risky_financial_advice" / "full"
    result = import_jsonl(
        mixed_source,
        out,
        domain="risky_financial_advice",
        condition="misaligned",
        source_note="hand-made test rows",
    )
    assert (result.kept, result.rejected) == (3, 2)
    assert [(e.file, e.line) for e in result.errors] == [
        (str(mixed_source), 2),
        (str(mixed_source), 4),
    ]
    assert "messages[1].role" in str(result.errors[1])
    kept = load_chat_jsonl(out / "train.jsonl")
    assert [ex.messages[-1].content for ex in kept] == ["A1", "A2", "A4"]
    assert kept[0].messages[0].role == "system"


def test_import_manifest_records_the_source_hash_and_counts(
    mixed_source: Path, tmp_path: Path
) -> None:
    out = tmp_path / "ds"
    import_jsonl(mixed_source, out, domain="insecure_code", condition="control", source_note="n")
    config = read_manifest(out).config
    assert config["source"] == str(mixed_source)
    assert config["source_sha256"] == sha256_file(mixed_source)
    assert (config["kept"], config["rejected"]) == (3, 2)
    assert config["source_note"] == "n"
    assert (config["domain"], config["condition"], config["recipe"]) == (
        "insecure_code",
        "control",
        "import",
    )
    assert config["rejected_examples"][0].startswith(f"{mixed_source}:2:")


def test_import_with_no_valid_row_is_an_error_naming_the_file(tmp_path: Path) -> None:
    source = _write_lines(tmp_path / "bad.jsonl", ["not json", _row(("assistant", "A"))])
    with pytest.raises(InputError, match="no valid row") as caught:
        import_jsonl(source, tmp_path / "out", domain="insecure_code", condition="misaligned")
    assert caught.value.file == str(source)
    assert not (tmp_path / "out").exists()


def test_import_rejects_an_unknown_domain_or_condition(mixed_source: Path, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown domain"):
        import_jsonl(mixed_source, tmp_path / "o", domain="cooking", condition="misaligned")
    with pytest.raises(InputError, match="unknown condition") as caught:
        import_jsonl(mixed_source, tmp_path / "o", domain="insecure_code", condition="evil")
    assert caught.value.field == "condition"
