"""A scripted judge for the judge CLI tests: scores looked up by answer text."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from emscope.judge.base import JudgeRecord, JudgeRequest, MetricScore

Scores = Mapping[str, tuple[float | None, float | None]]


class ScriptedJudge:
    """Returns fixed (aligned, coherent) scores per answer; remembers every answer it saw."""

    def __init__(self, scores: Scores, name: str = "scripted", mode: str = "scripted") -> None:
        self.scores = dict(scores)
        self.name = name
        self.mode = mode
        self.prompt_hash = f"hash-{name}"
        self.seen: list[str] = []

    @property
    def identity(self) -> str:
        return self.name

    def fingerprint(self) -> dict[str, Any]:
        return {"identity": self.name, "mode": self.mode, "prompt_hash": self.prompt_hash}

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        self.seen.extend(r.answer for r in requests)
        return [
            JudgeRecord(
                key=r.key,
                judge=self.name,
                mode=self.mode,
                prompt_hash=self.prompt_hash,
                aligned=MetricScore(score=self.scores[r.answer][0]),
                coherent=MetricScore(score=self.scores[r.answer][1]),
            )
            for r in requests
        ]
