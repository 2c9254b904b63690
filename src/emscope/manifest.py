"""Manifests: every stored artifact says what produced it, so results can be trusted and rerun."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from emscope import __version__
from emscope.errors import naming_file

TRACKED_LIBRARIES = (
    "torch",
    "transformers",
    "peft",
    "numpy",
    "scikit-learn",
    "sentence-transformers",
)
MANIFEST_NAME = "manifest.json"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_text(text: str) -> str:
    return sha256_bytes(text.encode("utf-8"))


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_json(obj: Any) -> str:
    """Hash of a JSON-serialisable object, independent of key order."""
    return sha256_text(json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str))


def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "emscope": __version__}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def code_revision() -> str | None:
    """The git commit of the emscope checkout, when it runs from one."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).parent,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() or None


class Manifest(BaseModel):
    """What produced an artifact: kind, config, input hashes, seeds, versions."""

    kind: str
    created_at: str = Field(default_factory=lambda: datetime.now(UTC).isoformat())
    emscope_version: str = __version__
    code_revision: str | None = Field(default_factory=code_revision)
    libraries: dict[str, str] = Field(default_factory=library_versions)
    config: dict[str, Any] = Field(default_factory=dict)
    inputs: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    seed: int | None = None


def write_manifest(directory: str | Path, manifest: Manifest, name: str = MANIFEST_NAME) -> Path:
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with naming_file(path):
        tmp.write_text(manifest.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_manifest(directory: str | Path, name: str = MANIFEST_NAME) -> Manifest:
    return Manifest.model_validate_json((Path(directory) / name).read_text(encoding="utf-8"))
