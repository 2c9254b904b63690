"""The one rule for "this directory (or store file) belongs to input hash X".

A stage writes its output where :func:`claim` says and calls :meth:`Claim.commit` when the output
is complete:

- nothing there yet: write in place (the marker is written first, so a rerun resumes it);
- there, under the same input hash: resume in place (finished or half done);
- there, under other inputs (a finished output of an earlier run): write beside it in
  ``<name>.partial-<hash>``, and only once that is complete swap it in. A stage never destroys a
  finished output before its replacement is complete.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

MARKER = ".inputhash"


@dataclass(frozen=True)
class Claim:
    """Where to write (``work``) and where the output ends up (``final``)."""

    final: Path
    work: Path
    input_hash: str
    is_dir: bool

    def commit(self) -> Path:
        """Swap a finished replacement in; a no-op when the work was done in place."""
        if self.work == self.final:
            return self.final
        old = self.final.with_name(self.final.name + ".replaced")
        _remove(old)
        self.final.replace(old)
        _remove(marker_path_for(old, self.is_dir))
        self.work.replace(self.final)
        if not self.is_dir:
            marker_path_for(self.work, False).replace(marker_path_for(self.final, False))
        _remove(old)
        return self.final


def marker_path_for(target: Path, is_dir: bool) -> Path:
    return target / MARKER if is_dir else target.with_name(target.name + MARKER)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    elif path.exists():
        path.unlink()


def claim(final: Path, input_hash: str, *, is_dir: bool) -> Claim:
    """Claim ``final`` for ``input_hash`` by the rule above; the marker is written at once."""
    final.parent.mkdir(parents=True, exist_ok=True)
    exists = final.exists()
    if not exists or owner_of(final, is_dir) == input_hash:
        work = final
    else:
        work = final.with_name(f"{final.name}.partial-{input_hash[:12]}")
        if work.exists() and owner_of(work, is_dir) != input_hash:
            _remove(work)
    if is_dir:
        work.mkdir(parents=True, exist_ok=True)
    marker_path_for(work, is_dir).write_text(input_hash + "\n", encoding="utf-8")
    return Claim(final, work, input_hash, is_dir)


def owner_of(target: Path, is_dir: bool) -> str | None:
    marker = marker_path_for(target, is_dir)
    return marker.read_text(encoding="utf-8").strip() if marker.is_file() else None
