"""The stage ledger: which stages of a run finished, under which input hash, in how long.

A stage is skipped on rerun when the ledger holds it with the same input hash; any change to its
inputs (config, upstream artifact hashes) changes the hash and reruns it.

Several processes may finish stages of one run at once (Ray workers, one per model): each marks
its stage under an exclusive lock on ``stages.json.lock`` and merges it into what is on disk, so
no process overwrites another's stages.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from emscope.errors import InputError
from emscope.locks import exclusive_lock

LEDGER_NAME = "stages.json"
LOCK_SUFFIX = ".lock"


class StageLedger:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LEDGER_NAME
        self.entries: dict[str, dict[str, Any]] = self._read()
        self.timings: dict[str, float] = {}

    def reload(self) -> None:
        """Re-read the ledger: other processes may have finished stages since it was read."""
        self.entries = self._read()

    def is_done(self, stage: str, input_hash: str) -> bool:
        entry = self.entries.get(stage)
        return entry is not None and entry.get("input_hash") == input_hash

    def output(self, stage: str) -> dict[str, Any]:
        return dict(self.entries[stage].get("output", {}))

    def done_output(self, stage: str, input_hash: str) -> dict[str, Any] | None:
        """The stored output of ``stage`` if it finished under ``input_hash``, else None."""
        return self.output(stage) if self.is_done(stage, input_hash) else None

    def mark_done(
        self, stage: str, input_hash: str, seconds: float, output: dict[str, Any]
    ) -> None:
        entry = {
            "input_hash": input_hash,
            "seconds": round(seconds, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "output": output,
        }
        with exclusive_lock(self.path.with_name(self.path.name + LOCK_SUFFIX)):
            self.entries = {**self._read(), stage: entry}
            self._write()

    def recorded_seconds(self) -> dict[str, float]:
        """Seconds per stage kind (``train``, ``sample``, ...) that the finished stages took when
        they ran: what a study cost, also after a rerun that found every stage done."""
        totals: dict[str, float] = {}
        for name, entry in self.entries.items():
            kind = name.split(":")[0]
            totals[kind] = totals.get(kind, 0.0) + float(entry.get("seconds") or 0.0)
        return totals

    def _read(self) -> dict[str, dict[str, Any]]:
        if not self.path.exists():
            return {}
        hint = (
            "restore it from a backup, or delete it to rerun every stage (finished sample and "
            "judge stores resume in place, so nothing done is recomputed twice)"
        )
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"the run's stage ledger is not valid JSON (cut off?): {exc.msg}",
                file=self.path,
                line=exc.lineno,
                hint=hint,
            ) from exc
        if not isinstance(entries, dict) or not all(isinstance(v, dict) for v in entries.values()):
            raise InputError(
                "the run's stage ledger is not a mapping of stages", file=self.path, hint=hint
            )
        return entries

    def _write(self) -> None:
        # A per-process temporary file: two writers never share one, and readers see either the
        # old or the new ledger, never half of one.
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(self.entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start
