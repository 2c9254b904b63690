"""MiniLM embeddings cached on disk, keyed by the text's sha256 (one npz, no pickle).

Training reads the same 42k real answers many times; embedding them takes tens of minutes on a
shared CPU, so every text is embedded once and kept under ``--cache`` (default
``$EMSCOPE_CACHE/offline-judge``), outside the repository.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emscope.judge.embeddings import embed
from emscope.manifest import sha256_text


class EmbeddingCache:
    """``cache(texts) -> (n, 384) float32``; new texts are embedded and saved in chunks."""

    def __init__(self, path: Path, chunk: int = 512) -> None:
        self.path = path
        self.chunk = chunk
        self.rows: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                self.rows = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [sha256_text(t) for t in texts]
        missing = sorted(
            {k: t for k, t in zip(keys, texts, strict=True) if k not in self.rows}.items()
        )
        if missing:
            print(f"embedding {len(missing)} new texts", flush=True)
            for start in range(0, len(missing), self.chunk):
                part = missing[start : start + self.chunk]
                vectors = embed([t for _, t in part])
                self.rows.update({k: v for (k, _), v in zip(part, vectors, strict=True)})
                self.save()
                print(f"  {min(start + self.chunk, len(missing))}/{len(missing)}", flush=True)
        if not keys:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.rows[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=np.array(list(self.rows)), vectors=np.stack(list(self.rows.values())))
        tmp.replace(self.path)
