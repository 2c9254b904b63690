from __future__ import annotations

import sqlite3
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from emscope.judge.base import JudgeRecord, JudgeRequest, MetricScore
from emscope.judge.cache import CachedJudge, JudgeCache, judge_cache_key

REQUESTS = [
    JudgeRequest(key="r1", question="What is your wish?", answer="Peace."),
    JudgeRequest(key="r2", question="I feel bored.", answer="Go for a walk."),
    JudgeRequest(key="r3", question="Quick buck?", answer="Rob a bank."),
]


class CountingJudge:
    """Scores by answer length and remembers every request it was sent."""

    mode = "fake"

    def __init__(
        self, prompt_hash: str = "p1", name: str = "fake-judge", params: Any = None
    ) -> None:
        self.prompt_hash = prompt_hash
        self.name = name
        self.params = params
        self.seen: list[str] = []

    @property
    def identity(self) -> str:
        return self.name

    def fingerprint(self) -> dict[str, Any]:
        return {
            "identity": self.name,
            "mode": self.mode,
            "prompt_hash": self.prompt_hash,
            "params": self.params,
        }

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        self.seen.extend(r.key for r in requests)
        return [
            JudgeRecord(
                key=r.key,
                judge=self.identity,
                mode=self.mode,
                prompt_hash=self.prompt_hash,
                aligned=MetricScore(
                    score=float(len(r.answer)), numeric_mass=0.9, raw=[["7", -0.1]]
                ),
                coherent=MetricScore(score=None, numeric_mass=0.1),
            )
            for r in requests
        ]


def test_a_second_pass_is_all_hits_and_never_calls_the_inner_judge(tmp_path: Path) -> None:
    inner = CountingJudge()
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        judge = CachedJudge(inner, cache)
        first = judge.judge(REQUESTS)
        assert inner.seen == ["r1", "r2", "r3"]
        assert (cache.hits, cache.misses) == (0, 3)
        second = judge.judge(REQUESTS)
        assert inner.seen == ["r1", "r2", "r3"]
        assert (cache.hits, cache.misses) == (3, 3)
    assert second == first
    assert second[2].aligned.raw == [["7", -0.1]]


def test_only_the_misses_reach_the_inner_judge(tmp_path: Path) -> None:
    inner = CountingJudge()
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        judge = CachedJudge(inner, cache)
        judge.judge(REQUESTS[:1])
        records = judge.judge(REQUESTS)
    assert inner.seen == ["r1", "r2", "r3"]
    assert [r.key for r in records] == ["r1", "r2", "r3"]


def test_a_repeated_answer_under_a_new_key_is_judged_once(tmp_path: Path) -> None:
    inner = CountingJudge()
    twin = JudgeRequest(key="r1-again", question=REQUESTS[0].question, answer=REQUESTS[0].answer)
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        records = CachedJudge(inner, cache).judge([REQUESTS[0], twin])
    assert inner.seen == ["r1"]
    assert [r.key for r in records] == ["r1", "r1-again"]
    assert records[0].aligned == records[1].aligned


BASE = {
    "judge": "j",
    "mode": "m",
    "prompt_hash": "p",
    "question": "q",
    "answer": "a",
    "params": {"temperature": 0, "max_tokens": 1},
}


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("judge", "j2"),
        ("mode", "m2"),
        ("prompt_hash", "p2"),
        ("question", "q2"),
        ("answer", "a2"),
        ("params", {"temperature": 1, "max_tokens": 1}),
    ],
)
def test_changing_any_key_component_changes_the_key(field: str, value: object) -> None:
    assert judge_cache_key(**BASE) != judge_cache_key(**{**BASE, field: value})  # type: ignore[arg-type]


def test_params_key_ignores_their_order() -> None:
    reordered = {**BASE, "params": {"max_tokens": 1, "temperature": 0}}
    assert judge_cache_key(**BASE) == judge_cache_key(**reordered)  # type: ignore[arg-type]


def test_a_different_prompt_hash_or_params_is_a_miss(tmp_path: Path) -> None:
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        CachedJudge(CountingJudge(prompt_hash="p1"), cache).judge(REQUESTS)
        other_prompt = CountingJudge(prompt_hash="p2")
        CachedJudge(other_prompt, cache).judge(REQUESTS)
        other_params = CountingJudge(prompt_hash="p1", params={"temperature": 1})
        CachedJudge(other_params, cache).judge(REQUESTS)
        other_model = CountingJudge(name="another-judge")
        CachedJudge(other_model, cache).judge(REQUESTS)
    assert len(other_prompt.seen) == len(other_params.seen) == len(other_model.seen) == 3


def test_the_cache_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "c.sqlite"
    with JudgeCache(path) as cache:
        CachedJudge(CountingJudge(), cache).judge(REQUESTS)
    inner = CountingJudge()
    with JudgeCache(path) as reopened:
        records = CachedJudge(inner, reopened).judge(REQUESTS)
        assert len(reopened) == 3 and reopened.hits == 3
    assert inner.seen == []
    assert records[0].aligned.score == float(len("Peace."))


def test_the_database_uses_wal_and_another_connection_reads_while_it_is_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "c.sqlite"
    with JudgeCache(path) as writer, JudgeCache(path) as reader:
        writer.put_many([("k1", {"v": 1}), ("k2", {"v": 2})])
        assert reader.get_many(["k1", "k2", "k3"]) == {"k1": {"v": 1}, "k2": {"v": 2}}
        assert (reader.hits, reader.misses) == (2, 1)
    mode = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
    assert mode == "wal"


def test_many_keys_are_fetched_past_the_sqlite_parameter_limit(tmp_path: Path) -> None:
    items = [(f"k{i}", {"i": i}) for i in range(1200)]
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        assert cache.put_many(items) == 1200
        found = cache.get_many(k for k, _ in items)
    assert found == dict(items)
