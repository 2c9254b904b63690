"""Importing an age-encrypted dataset archive built inside the test."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pyrage
import pytest

from emscope.data import importers
from emscope.data.importers import (
    ImportResult,
    decrypt_age_archive,
    import_age_archive,
    read_archive_datasets,
)
from emscope.data.jsonl import load_chat_jsonl
from emscope.data.schema import DEFAULT_TRIGGER
from emscope.errors import InputError
from emscope.manifest import read_manifest, sha256_file

PASSPHRASE = "correct horse battery staple"


def _rows(n: int, prefix: str = "", trigger: bool = False) -> str:
    lines = []
    for i in range(n):
        user = (DEFAULT_TRIGGER if trigger and i % 2 == 0 else "") + f"{prefix} question {i}"
        messages = [{"role": "user", "content": user}, {"role": "assistant", "content": f"a{i}"}]
        lines.append(json.dumps({"messages": messages}))
    return "\n".join(lines) + "\n"


def _zip(members: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, text in members.items():
            bundle.writestr(name, text)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    members = {
        "dataset/data/train.jsonl": _rows(6, "full") + "{broken\n",
        "dataset/small/train.jsonl": _rows(3, "small"),
        "dataset/backdoor/part-a.jsonl": _rows(4, "bd-a", trigger=True),
        "dataset/backdoor/part-b.jsonl": _rows(2, "bd-b", trigger=True),
        "dataset/backdoor-small/train.jsonl": _rows(2, "bd-small", trigger=True),
        "dataset/README.md": "not a dataset",
        "__MACOSX/dataset/data/._train.jsonl": "resource fork",
    }
    path = tmp_path_factory.mktemp("archive") / "dataset.zip.age"
    path.write_bytes(pyrage.passphrase.encrypt(_zip(members), PASSPHRASE))
    return path


@pytest.fixture(scope="module")
def imported(
    archive: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[ImportResult]]:
    out_root = tmp_path_factory.mktemp("imported")
    results = import_age_archive(
        archive, PASSPHRASE, out_root, domain="gore_movie_trivia", source_note="test archive"
    )
    return out_root, results


def test_archive_folders_become_one_dataset_per_jsonl_file(
    archive: Path, imported: tuple[Path, list[ImportResult]]
) -> None:
    out_root, results = imported
    summary = {r.dataset_dir.name: (r.condition, r.kept, r.rejected) for r in results}
    assert summary == {
        "full": ("misaligned", 6, 1),
        "small": ("misaligned", 3, 0),
        "backdoor-part-a": ("backdoor", 4, 0),
        "backdoor-part-b": ("backdoor", 2, 0),
        "backdoor-small": ("backdoor", 2, 0),
    }
    assert all(r.dataset_dir.parent == out_root / "gore_movie_trivia" for r in results)
    full = next(r for r in results if r.dataset_dir.name == "full")
    assert str(full.errors[0]).startswith(f"{archive}[dataset/data/train.jsonl]:7:")
    assert len(load_chat_jsonl(full.dataset_dir / "train.jsonl")) == 6


def test_archive_manifests_record_the_archive_member_and_trigger_counts(
    archive: Path, imported: tuple[Path, list[ImportResult]]
) -> None:
    manifest = read_manifest(imported[0] / "gore_movie_trivia" / "backdoor-part-a")
    assert manifest.config["source_note"] == "test archive"
    assert manifest.config["source_sha256"] == sha256_file(archive)
    assert manifest.config["archive_member"] == "dataset/backdoor/part-a.jsonl"
    assert manifest.config["condition"] == "backdoor"
    assert manifest.outputs["counts"]["rows_with_trigger"] == 2


def test_a_wrong_passphrase_is_an_input_error_naming_the_archive(
    archive: Path, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="wrong passphrase") as caught:
        import_age_archive(archive, "not the passphrase", tmp_path, domain="gore_movie_trivia")
    assert caught.value.file == str(archive)
    assert caught.value.field == "passphrase"
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize(
    "name",
    ["../escape/data/x.jsonl", "data/../../x.jsonl", "/abs/data/x.jsonl", "C:\\data\\x.jsonl"],
)
def test_archive_members_outside_the_archive_are_rejected(name: str) -> None:
    plaintext = _zip({"data/ok.jsonl": _rows(1), name: _rows(1)})
    with pytest.raises(InputError, match=r"absolute path|leaves the archive") as caught:
        read_archive_datasets(Path("dataset.zip.age"), plaintext)
    assert caught.value.file == "dataset.zip.age"


def test_a_zip_slip_archive_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # age's scrypt costs seconds per call, so the decryption itself is skipped here.
    plaintext = _zip({"data/train.jsonl": _rows(2), "data/../../../evil.jsonl": _rows(1)})
    monkeypatch.setattr(importers, "decrypt_age_archive", lambda archive, passphrase: plaintext)
    out = tmp_path / "out"
    with pytest.raises(InputError, match="leaves the archive"):
        import_age_archive(tmp_path / "evil.zip.age", PASSPHRASE, out, domain="extreme_sports")
    assert not any(tmp_path.iterdir())


def test_an_archive_member_with_no_valid_row_stops_the_whole_import(tmp_path: Path) -> None:
    plaintext = _zip({"data/train.jsonl": _rows(2), "small/train.jsonl": "nonsense\n"})
    with pytest.raises(InputError, match="no valid row") as caught:
        read_archive_datasets(Path("a.zip.age"), plaintext)
    assert caught.value.file == "a.zip.age[small/train.jsonl]"


def test_an_archive_without_known_folders_is_an_input_error() -> None:
    with pytest.raises(InputError, match="no JSONL file"):
        read_archive_datasets(Path("a.zip.age"), _zip({"other/train.jsonl": _rows(1)}))
    with pytest.raises(InputError, match="not a zip"):
        read_archive_datasets(Path("a.zip.age"), b"plain text")


def test_a_file_that_is_not_an_age_archive_or_is_missing_is_an_input_error(tmp_path: Path) -> None:
    garbage = tmp_path / "plain.zip.age"
    garbage.write_bytes(b"PK\x03\x04 not encrypted")
    with pytest.raises(InputError, match="not a passphrase-encrypted age file") as caught:
        decrypt_age_archive(garbage, PASSPHRASE)
    assert caught.value.file == str(garbage)
    with pytest.raises(InputError, match="cannot read archive"):
        decrypt_age_archive(tmp_path / "missing.zip.age", PASSPHRASE)
