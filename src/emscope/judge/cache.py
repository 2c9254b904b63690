"""A content-addressed SQLite cache of judge scores, and a judge wrapper that uses it.

A key hashes everything that can change a score: the judge's declared fingerprint (identity,
mode, request parameters), the hash of the prompt templates the request is judged with (its
question file's, or the judge's defaults), the question and the answer. Judging the same answers
again (a resumed study, a second report) then costs nothing. The database runs in WAL mode, so
several processes can read it while one writes.
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from emscope.judge.base import Judge, JudgeRecord, JudgeRequest, prompt_set_hash
from emscope.manifest import sha256_json
from emscope.paths import cache_dir

_SQLITE_VARIABLES = 500  # stay well under SQLite's limit on bound parameters per statement


def judge_cache_key(
    *,
    judge: str,
    mode: str,
    prompt_hash: str | None,
    question: str,
    answer: str,
    params: Mapping[str, Any] | None = None,
) -> str:
    """sha256 over every input of one judgement; ``params`` enter as sorted JSON.

    >>> a = judge_cache_key(judge="j", mode="m", prompt_hash="p", question="q", answer="a")
    >>> a == judge_cache_key(judge="j", mode="m", prompt_hash="p", question="q", answer="a!")
    False
    """
    return sha256_json(
        {
            "judge": judge,
            "mode": mode,
            "prompt_hash": prompt_hash,
            "question": question,
            "answer": answer,
            "params": dict(params or {}),
        }
    )


def default_cache_path() -> Path:
    return cache_dir() / "judge-cache.sqlite"


class JudgeCache:
    """A key -> JSON-object store in SQLite; counts hits and misses of ``get_many``."""

    def __init__(self, path: str | Path | None = None, *, timeout_s: float = 60.0) -> None:
        self.path = Path(path) if path is not None else default_cache_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # Autocommit mode: writes open their own transaction in put_many.
        self._db = sqlite3.connect(self.path, timeout=timeout_s, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS judge_cache "
            "(key TEXT PRIMARY KEY, value TEXT NOT NULL, created REAL NOT NULL)"
        )
        self.hits = 0
        self.misses = 0

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The stored values of the keys that are present; each distinct key counts once."""
        wanted = list(dict.fromkeys(keys))
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(wanted), _SQLITE_VARIABLES):
            chunk = wanted[start : start + _SQLITE_VARIABLES]
            marks = ",".join("?" * len(chunk))
            rows = self._db.execute(
                f"SELECT key, value FROM judge_cache WHERE key IN ({marks})", chunk
            )
            found.update((key, json.loads(value)) for key, value in rows)
        self.hits += len(found)
        self.misses += len(wanted) - len(found)
        return found

    def put_many(self, items: Iterable[tuple[str, Mapping[str, Any]]]) -> int:
        """Store (key, JSON object) pairs in one transaction; later values replace earlier ones."""
        now = time.time()
        rows = [(key, json.dumps(value, sort_keys=True), now) for key, value in items]
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany(
                "INSERT OR REPLACE INTO judge_cache (key, value, created) VALUES (?, ?, ?)", rows
            )
        return len(rows)

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM judge_cache").fetchone()[0])

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> JudgeCache:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def request_prompt_hash(request: JudgeRequest, fingerprint: Mapping[str, Any]) -> str | None:
    """The prompt hash a request is judged with: its own set's, else the judge's default."""
    if request.prompts is None:
        default = fingerprint.get("prompt_hash")
        return None if default is None else str(default)
    return prompt_set_hash(request.prompts)


class CachedJudge:
    """Wrap a judge so that only answers missing from the cache reach it.

    The key uses the inner judge's :meth:`~emscope.judge.base.Judge.fingerprint` and the hash
    of each request's own prompt set (see :func:`request_prompt_hash`).
    """

    def __init__(self, inner: Judge, cache: JudgeCache) -> None:
        self.inner = inner
        self.cache = cache
        self._fingerprint = inner.fingerprint()

    @property
    def identity(self) -> str:
        return self.inner.identity

    def fingerprint(self) -> dict[str, Any]:
        return self.inner.fingerprint()

    def key_for(self, request: JudgeRequest) -> str:
        fp = self._fingerprint
        return judge_cache_key(
            judge=str(fp["identity"]),
            mode=str(fp.get("mode") or ""),
            prompt_hash=request_prompt_hash(request, fp),
            question=request.question,
            answer=request.answer,
            params=fp.get("params") or {},
        )

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        keys = [self.key_for(r) for r in requests]
        stored = self.cache.get_many(keys)
        missing: dict[str, JudgeRequest] = {}
        for key, request in zip(keys, requests, strict=True):
            if key not in stored:
                missing.setdefault(key, request)
        if missing:
            fresh = self.inner.judge(list(missing.values()))
            new = {
                key: r.model_dump(mode="json", exclude={"key"})
                for key, r in zip(missing, fresh, strict=True)
            }
            self.cache.put_many(new.items())
            stored.update(new)
        return [
            JudgeRecord.model_validate({**stored[key], "key": request.key, **_origin(request)})
            for key, request in zip(keys, requests, strict=True)
        ]


def _origin(request: JudgeRequest) -> dict[str, str | None]:
    """A cached score keeps the text hash it was keyed on; its origin is the request's own."""
    return {"prompt_origin": request.prompt_origin} if request.prompts is not None else {}
