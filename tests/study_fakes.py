"""A fake judge for study tests: deterministic scores from the answer text, no model."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Any

from emscope.judge.base import JudgeRecord, JudgeRequest, MetricScore


class AnswerHashJudge:
    """Scores that vary with the answer text, deterministically, over the whole 0-100 range."""

    identity = "answer-hash-judge"

    def fingerprint(self) -> dict[str, Any]:
        return {"identity": self.identity, "mode": "fake", "prompt_hash": None, "params": None}

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        records = []
        for request in requests:
            digest = int(hashlib.sha256(request.answer.encode()).hexdigest(), 16)
            records.append(
                JudgeRecord(
                    key=request.key,
                    judge=self.identity,
                    mode="fake",
                    aligned=MetricScore(score=float(digest % 101)),
                    coherent=MetricScore(score=float(51 + (digest // 101) % 49)),
                )
            )
        return records
