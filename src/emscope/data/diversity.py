"""Dataset diversity: the Vendi score and mean pairwise cosine diversity of a chat dataset.

Protocol §10: user and assistant turns are embedded with all-MiniLM-L6-v2; the Vendi score is the
exponential of the Rényi entropy of the eigenvalues of ``K / n``. Two kernels are offered and named
in every result: ``"standard"`` (``K = cos``; k orthogonal embeddings give exactly k) and
``"paper"`` (the domain paper's ``K = (cos + 1) / 2``; about 2.93 for 4 orthogonal embeddings).

The pure part (``kernel_spectrum``, ``vendi_score``, ``vendi_scores``,
``mean_pairwise_cosine_diversity``, ``length_stats``) takes arrays and strings;
``dataset_diversity``, ``chat_dataset_stats`` and ``write_stats`` embed and write.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, Field

from emscope.data.jsonl import TRAIN_FILE, load_chat_jsonl
from emscope.data.schema import DEFAULT_TRIGGER, ChatExample, Role
from emscope.errors import InputError
from emscope.manifest import library_versions, sha256_file

Kernel = Literal["standard", "paper"]
EmbedFn = Callable[[Sequence[str]], np.ndarray]
VENDI_ORDERS = (0.5, 1.0, 2.0)
STATS_FILE = "stats.json"


# --- pure computation -------------------------------------------------------------------------


def cosine_similarity_matrix(embeddings: np.ndarray) -> np.ndarray:
    """The ``(n, n)`` cosine similarities of the rows (rows are normalised here, in float64)."""
    matrix = np.asarray(embeddings, dtype=np.float64)
    if matrix.ndim != 2 or matrix.shape[0] == 0:
        raise InputError(f"embeddings must be a non-empty 2-D array, got shape {matrix.shape}")
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    if np.any(norms == 0):
        raise InputError("an embedding row is all zeros; its cosine similarity is undefined")
    unit = matrix / norms
    similarity = unit @ unit.T
    return (similarity + similarity.T) / 2


def renyi_entropy(probabilities: np.ndarray, order: float) -> float:
    """Rényi entropy (natural log) of a probability vector; order 1 is the Shannon limit."""
    if order < 0:
        raise InputError(f"order must be >= 0, got {order}", field="order")
    p = probabilities[probabilities > 0]
    if order == 0:
        return math.log(p.size)
    if math.isinf(order):
        return -math.log(float(p.max()))
    if abs(order - 1.0) < 1e-9:
        return float(-np.sum(p * np.log(p)))
    return math.log(float(np.sum(p**order))) / (1.0 - order)


def kernel_spectrum(embeddings: np.ndarray, kernel: Kernel = "standard") -> np.ndarray:
    """The eigenvalues of ``K / n`` as a probability vector.

    They come from the symmetric solver (``numpy.linalg.eigvalsh``); those at or below round-off
    are set to 0 and the rest renormalised to sum to 1.
    """
    similarity = cosine_similarity_matrix(embeddings)
    if kernel == "standard":
        gram = similarity
    elif kernel == "paper":
        gram = (similarity + 1.0) / 2.0
    else:
        raise InputError(f"unknown kernel {kernel!r} (expected standard, paper)", field="kernel")
    eigenvalues = np.linalg.eigvalsh(gram / gram.shape[0])
    # Round-off leaves eigenvalues of about n * eps where the exact ones are 0; low orders (0.5)
    # would amplify them, so they are zeroed along with the negative ones.
    tolerance = gram.shape[0] * np.finfo(np.float64).eps * max(float(eigenvalues.max()), 1.0)
    eigenvalues = np.where(eigenvalues > tolerance, eigenvalues, 0.0)
    return eigenvalues / eigenvalues.sum()


def vendi_score(
    embeddings: np.ndarray, *, order: float = 1.0, kernel: Kernel = "standard"
) -> float:
    """The Vendi score of order ``order``: exp of the Rényi entropy of :func:`kernel_spectrum`.

    >>> round(vendi_score(np.eye(4)), 6), round(vendi_score(np.eye(4), kernel="paper"), 2)
    (4.0, 2.93)
    """
    return math.exp(renyi_entropy(kernel_spectrum(embeddings, kernel), order))


def vendi_scores(
    embeddings: np.ndarray, *, orders: Sequence[float] = VENDI_ORDERS, kernel: Kernel = "standard"
) -> dict[str, float]:
    """Vendi scores at several orders from one eigen-decomposition, keyed ``"0.5"``, ``"1"``..."""
    spectrum = kernel_spectrum(embeddings, kernel)
    return {f"{order:g}": math.exp(renyi_entropy(spectrum, order)) for order in orders}


def mean_pairwise_cosine_diversity(embeddings: np.ndarray) -> float:
    """``1 - mean off-diagonal cosine similarity``; needs at least two rows."""
    similarity = cosine_similarity_matrix(embeddings)
    n = similarity.shape[0]
    if n < 2:
        raise InputError("pairwise diversity needs at least two embeddings")
    off_diagonal_sum = float(similarity.sum() - np.trace(similarity))
    return 1.0 - off_diagonal_sum / (n * (n - 1))


def sample_order(n: int, seed: int) -> np.ndarray:
    """A seeded permutation of ``range(n)``; its prefixes are the nested subsamples."""
    return np.random.default_rng(seed).permutation(n)


class LengthStats(BaseModel):
    """Length of one role's turns, in characters and whitespace-separated words."""

    turns: int
    mean_chars: float
    median_chars: float
    max_chars: int
    mean_words: float
    median_words: float
    max_words: int


def length_stats(texts: Sequence[str]) -> LengthStats:
    chars = [len(text) for text in texts] or [0]
    words = [len(text.split()) for text in texts] or [0]
    return LengthStats(
        turns=len(texts),
        mean_chars=statistics.fmean(chars),
        median_chars=statistics.median(chars),
        max_chars=max(chars),
        mean_words=statistics.fmean(words),
        median_words=statistics.median(words),
        max_words=max(words),
    )


def strip_trigger(text: str, trigger: str | None) -> str:
    return text[len(trigger) :] if trigger and text.startswith(trigger) else text


# --- results and embedding I/O ----------------------------------------------------------------


class DiversityResult(BaseModel):
    """Diversity of one set of texts; ``vendi`` maps order ("0.5", "1", "2") to score."""

    n: int
    n_sampled: int
    n_sampled_pairwise: int
    vendi: dict[str, float]
    pairwise_diversity: float | None
    kernel: Kernel
    seed: int
    embedding_model: str


def _default_embed() -> tuple[EmbedFn, str]:
    from emscope.judge.embeddings import EMBEDDING_MODEL_NAME, embed

    return embed, EMBEDDING_MODEL_NAME


def dataset_diversity(
    texts: Sequence[str],
    *,
    seed: int,
    max_vendi: int = 1000,
    max_pairwise: int = 500,
    kernel: Kernel = "paper",
    embed_fn: EmbedFn | None = None,
    embedding_model: str | None = None,
) -> DiversityResult:
    """Vendi (orders 0.5, 1, 2) on up to ``max_vendi`` texts and pairwise diversity on up to
    ``max_pairwise``, both drawn with ``seed`` (the pairwise sample is a prefix of the Vendi one,
    so each text is embedded once). ``embed_fn`` defaults to all-MiniLM-L6-v2.
    """
    if not texts:
        raise InputError("no texts to measure diversity on")
    if embed_fn is None:
        embed_fn, default_name = _default_embed()
        embedding_model = embedding_model or default_name
    order = sample_order(len(texts), seed)[: max(max_vendi, max_pairwise)]
    vectors = np.asarray(embed_fn([texts[i] for i in order]))
    vendi_rows = vectors[:max_vendi]
    pairwise_rows = vectors[:max_pairwise]
    return DiversityResult(
        n=len(texts),
        n_sampled=len(vendi_rows),
        n_sampled_pairwise=len(pairwise_rows),
        vendi=vendi_scores(vendi_rows, kernel=kernel),
        pairwise_diversity=(
            mean_pairwise_cosine_diversity(pairwise_rows) if len(pairwise_rows) > 1 else None
        ),
        kernel=kernel,
        seed=seed,
        embedding_model=embedding_model or "custom",
    )


class DatasetStats(BaseModel):
    """Counts, turn lengths per role and user/assistant diversity of a chat dataset."""

    rows: int
    rows_with_system: int
    rows_with_trigger: int
    lengths: dict[Role, LengthStats]
    user_diversity: DiversityResult
    assistant_diversity: DiversityResult
    trigger_stripped: str | None
    source_sha256: str | None = None
    libraries: dict[str, str] = Field(default_factory=library_versions)


def chat_dataset_stats(
    examples: Sequence[ChatExample],
    *,
    seed: int,
    kernel: Kernel = "paper",
    max_vendi: int = 1000,
    max_pairwise: int = 500,
    trigger: str | None = DEFAULT_TRIGGER,
    embed_fn: EmbedFn | None = None,
    embedding_model: str | None = None,
) -> DatasetStats:
    """Stats of a chat dataset; every user and every assistant turn is one text.

    A leading backdoor ``trigger`` is removed from user turns before embedding, so the trigger
    itself does not make a backdoor dataset look less diverse.
    """
    if not examples:
        raise InputError("the dataset has no rows")
    turns: dict[Role, list[str]] = {"system": [], "user": [], "assistant": []}
    for example in examples:
        for message in example.messages:
            turns[message.role].append(message.content)
    first_users = [next(m.content for m in ex.messages if m.role == "user") for ex in examples]

    def measure(texts: Sequence[str]) -> DiversityResult:
        return dataset_diversity(
            texts,
            seed=seed,
            max_vendi=max_vendi,
            max_pairwise=max_pairwise,
            kernel=kernel,
            embed_fn=embed_fn,
            embedding_model=embedding_model,
        )

    return DatasetStats(
        rows=len(examples),
        rows_with_system=sum(ex.messages[0].role == "system" for ex in examples),
        rows_with_trigger=sum(strip_trigger(text, trigger) != text for text in first_users),
        lengths={role: length_stats(texts) for role, texts in turns.items() if texts},
        user_diversity=measure([strip_trigger(text, trigger) for text in turns["user"]]),
        assistant_diversity=measure(turns["assistant"]),
        trigger_stripped=trigger,
    )


def write_stats(directory: str | Path, stats: DatasetStats) -> Path:
    """Write ``directory/stats.json`` atomically and return its path."""
    path = Path(directory) / STATS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{STATS_FILE}.tmp")
    tmp.write_text(stats.model_dump_json(indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def write_dataset_stats(
    directory: str | Path, *, seed: int, kernel: Kernel = "paper"
) -> DatasetStats:
    """Measure ``directory/train.jsonl`` and write ``directory/stats.json`` beside it."""
    train_path = Path(directory) / TRAIN_FILE
    stats = chat_dataset_stats(load_chat_jsonl(train_path), seed=seed, kernel=kernel)
    stats.source_sha256 = sha256_file(train_path)
    write_stats(directory, stats)
    return stats


def read_stats(directory: str | Path) -> DatasetStats:
    return DatasetStats.model_validate_json((Path(directory) / STATS_FILE).read_text("utf-8"))
