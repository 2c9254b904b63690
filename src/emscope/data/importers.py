"""Importing existing datasets: one chat JSONL file, or an age-encrypted dataset archive.

Invalid rows never stop an import: they are reported (each naming its file and line) and the
valid rows, system turns included, are written as an emscope dataset with a manifest that records
where they came from. An import with no valid row at all is an error.

The domain paper ships its data as a passphrase-encrypted ``dataset.zip.age``; its folders map
onto emscope datasets of one domain::

    data/ -> <domain>/full        small/ -> <domain>/small
    backdoor/ -> <domain>/backdoor        backdoor-small/ -> <domain>/backdoor-small

A folder with several JSONL files gives one dataset per file (``<domain>/full-<file stem>``).
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from emscope.data.domains import get_domain
from emscope.data.jsonl import (
    UTF8_BOM,
    ChatLoadResult,
    load_chat_jsonl,
    parse_chat_line,
    write_dataset,
)
from emscope.data.schema import CONDITIONS, Condition
from emscope.errors import InputError
from emscope.manifest import sha256_bytes, sha256_file

IMPORT_RECIPE = "import"
ARCHIVE_FOLDERS: dict[str, tuple[str, Condition]] = {
    "data": ("full", "misaligned"),
    "small": ("small", "misaligned"),
    "backdoor": ("backdoor", "backdoor"),
    "backdoor-small": ("backdoor-small", "backdoor"),
}
# Imports have no seed of their own; the manifest records 0.
_IMPORT_SEED = 0
_ERRORS_IN_MANIFEST = 20


@dataclass
class ImportResult:
    """One imported dataset: where it was written, from what, and the rows it rejected."""

    dataset_dir: Path
    source: str
    condition: Condition
    kept: int
    rejected: int
    errors: list[InputError] = field(default_factory=list)


def _check_condition(condition: str) -> Condition:
    for known in CONDITIONS:
        if condition == known:
            return known
    raise InputError(
        f"unknown condition {condition!r} (expected {', '.join(CONDITIONS)})", field="condition"
    )


def _write_import(
    out_dir: Path,
    loaded: ChatLoadResult,
    *,
    source: str,
    domain: str,
    condition: Condition,
    provenance: dict[str, Any],
) -> ImportResult:
    extra = {
        **provenance,
        "kept": len(loaded.examples),
        "rejected": len(loaded.errors),
        "rejected_examples": [str(error) for error in loaded.errors[:_ERRORS_IN_MANIFEST]],
    }
    write_dataset(
        out_dir,
        loaded.examples,
        domain=domain,
        recipe=IMPORT_RECIPE,
        condition=condition,
        seed=_IMPORT_SEED,
        extra=extra,
    )
    return ImportResult(
        dataset_dir=out_dir,
        source=source,
        condition=condition,
        kept=len(loaded.examples),
        rejected=len(loaded.errors),
        errors=list(loaded.errors),
    )


def _require_rows(loaded: ChatLoadResult, source: str) -> None:
    if loaded.examples:
        return
    if not loaded.errors:
        raise InputError("no rows to import", file=source)
    raise InputError(
        f"no valid row to import ({len(loaded.errors)} rejected); the first: {loaded.errors[0]}",
        file=source,
    )


def import_jsonl(
    src: str | Path,
    out_dir: str | Path,
    *,
    domain: str,
    condition: str,
    source_note: str = "",
) -> ImportResult:
    """Import a chat JSONL file as the dataset ``out_dir`` (train.jsonl + manifest.json).

    The manifest records the source path, its sha256, ``source_note`` and the kept and rejected
    counts; the returned ``errors`` name the file and line of every rejected row.
    """
    src = Path(src)
    get_domain(domain)
    checked_condition = _check_condition(condition)
    loaded = load_chat_jsonl(src, on_error="collect")
    _require_rows(loaded, str(src))
    provenance = {"source": str(src), "source_sha256": sha256_file(src), "source_note": source_note}
    return _write_import(
        Path(out_dir),
        loaded,
        source=str(src),
        domain=domain,
        condition=checked_condition,
        provenance=provenance,
    )


# --- age-encrypted archives -------------------------------------------------------------------


def decrypt_age_archive(archive: Path, passphrase: str) -> bytes:
    """The plaintext of a passphrase-encrypted age file; a wrong passphrase is an ``InputError``."""
    import pyrage

    try:
        ciphertext = archive.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read archive: {exc.strerror}", file=archive) from exc
    try:
        return bytes(pyrage.passphrase.decrypt(ciphertext, passphrase))
    except pyrage.DecryptError as exc:
        raise InputError(
            f"cannot decrypt ({exc}): wrong passphrase, or not a passphrase-encrypted age file",
            file=archive,
            field="passphrase",
        ) from exc


def safe_member_path(name: str, archive: str | Path) -> PurePosixPath:
    """The archive member ``name`` as a relative path; absolute paths and ``..`` are refused."""
    parts = re.split(r"[\\/]", name)
    if name.startswith(("/", "\\")) or re.match(r"^[A-Za-z]:", name):
        raise InputError(f"absolute path {name!r} in archive", file=archive, field="member")
    if ".." in parts:
        raise InputError(f"path {name!r} leaves the archive ('..')", file=archive, field="member")
    return PurePosixPath(*[part for part in parts if part not in ("", ".")])


def _is_dataset_file(path: PurePosixPath) -> bool:
    # macOS zips carry "__MACOSX/data/._x.jsonl" resource forks that are not JSONL.
    return (
        path.suffix == ".jsonl"
        and "__MACOSX" not in path.parts
        and not path.name.startswith("._")
        and len(path.parts) >= 2
        and path.parts[-2] in ARCHIVE_FOLDERS
    )


def parse_chat_bytes(data: bytes, source: str) -> ChatLoadResult:
    """Validate JSONL bytes row by row, collecting errors that name ``source`` and the line."""
    result = ChatLoadResult()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if number == 1:
            raw = raw.removeprefix(UTF8_BOM)
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            result.errors.append(
                InputError(f"not UTF-8 ({exc.reason})", file=source, line=number, field="row")
            )
            continue
        if not text.strip():
            continue
        try:
            result.examples.append(parse_chat_line(text, file=source, line=number))
            result.lines.append(number)
        except InputError as error:
            result.errors.append(error)
    return result


@dataclass
class ArchiveDataset:
    """One validated archive file and the dataset name (under the domain) it becomes."""

    name: str
    member: str
    condition: Condition
    sha256: str
    loaded: ChatLoadResult


def _dataset_names(paths: Sequence[PurePosixPath], archive: Path) -> list[str]:
    by_folder: dict[str, int] = {}
    for path in paths:
        by_folder[path.parts[-2]] = by_folder.get(path.parts[-2], 0) + 1
    names = []
    for path in paths:
        base = ARCHIVE_FOLDERS[path.parts[-2]][0]
        stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", path.stem)
        names.append(base if by_folder[path.parts[-2]] == 1 else f"{base}-{stem}")
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise InputError(
            f"several archive files map onto the dataset(s) {', '.join(duplicates)}", file=archive
        )
    return names


def read_archive_datasets(archive: Path, plaintext: bytes) -> list[ArchiveDataset]:
    """Validate every dataset file of a decrypted zip; nothing is written here."""
    try:
        bundle = zipfile.ZipFile(io.BytesIO(plaintext))
    except zipfile.BadZipFile as exc:
        raise InputError(f"the decrypted archive is not a zip file ({exc})", file=archive) from exc
    with bundle:
        members = {
            safe_member_path(info.filename, archive): info
            for info in bundle.infolist()
            if not info.is_dir()
        }
        paths = sorted(path for path in members if _is_dataset_file(path))
        if not paths:
            folders = ", ".join(f"{folder}/" for folder in ARCHIVE_FOLDERS)
            raise InputError(f"no JSONL file in any of {folders}", file=archive)
        datasets = []
        for path, name in zip(paths, _dataset_names(paths, archive), strict=True):
            data = bundle.read(members[path])
            source = f"{archive}[{path}]"
            loaded = parse_chat_bytes(data, source)
            _require_rows(loaded, source)
            condition = ARCHIVE_FOLDERS[path.parts[-2]][1]
            datasets.append(ArchiveDataset(name, str(path), condition, sha256_bytes(data), loaded))
    return datasets


def write_archive_dataset(
    archive: Path, dataset: ArchiveDataset, out_dir: Path, *, domain: str, source_note: str = ""
) -> ImportResult:
    """Write one validated archive dataset as the emscope dataset ``out_dir``."""
    provenance = {
        "source": str(archive),
        "source_sha256": sha256_file(archive),
        "archive_member": dataset.member,
        "archive_member_sha256": dataset.sha256,
        "source_note": source_note,
    }
    return _write_import(
        out_dir,
        dataset.loaded,
        source=f"{archive}[{dataset.member}]",
        domain=domain,
        condition=dataset.condition,
        provenance=provenance,
    )


def import_age_archive(
    archive: str | Path,
    passphrase: str,
    out_root: str | Path,
    *,
    domain: str,
    source_note: str = "",
) -> list[ImportResult]:
    """Decrypt ``archive`` (a passphrase-encrypted zip) and import its datasets under
    ``out_root/<domain>/``; every file is validated before any dataset is written.
    """
    archive = Path(archive)
    get_domain(domain)
    plaintext = decrypt_age_archive(archive, passphrase)
    datasets = read_archive_datasets(archive, plaintext)
    return [
        write_archive_dataset(
            archive,
            dataset,
            Path(out_root) / domain / dataset.name,
            domain=domain,
            source_note=source_note,
        )
        for dataset in datasets
    ]
