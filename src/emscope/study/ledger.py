"""The stage ledger: which stages of a run finished, under which input hash, in how long.

A stage is skipped on rerun when the ledger holds it with the same input hash; any change to its
inputs (config, upstream artifact hashes) changes the hash and reruns it.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

LEDGER_NAME = "stages.json"


class StageLedger:
    def __init__(self, run_dir: Path) -> None:
        self.path = run_dir / LEDGER_NAME
        self.entries: dict[str, dict[str, Any]] = (
            json.loads(self.path.read_text(encoding="utf-8")) if self.path.exists() else {}
        )
        self.timings: dict[str, float] = {}

    def is_done(self, stage: str, input_hash: str) -> bool:
        entry = self.entries.get(stage)
        return entry is not None and entry.get("input_hash") == input_hash

    def output(self, stage: str) -> dict[str, Any]:
        return dict(self.entries[stage].get("output", {}))

    def mark_done(
        self, stage: str, input_hash: str, seconds: float, output: dict[str, Any]
    ) -> None:
        self.entries[stage] = {
            "input_hash": input_hash,
            "seconds": round(seconds, 3),
            "finished_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "output": output,
        }
        self._save()

    def _save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.entries, indent=2, sort_keys=True) + "\n", encoding="utf-8")
        tmp.replace(self.path)

    @contextmanager
    def timed(self, stage: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[stage] = self.timings.get(stage, 0.0) + time.perf_counter() - start
