"""The GPT-4o-scored real answers (``shared/data/em-judged``) as training and held-out sets.

Whole files are held out, chosen by model or fine-tune family, so held-out figures describe
models the judge never saw: both gemma-2-9b-it files (a model family absent from training) and
both Qwen2.5-7B-Instruct files (a base model and its bad-medical-advice fine-tune). Training
files are subsampled (seeded): every answer GPT-4o calls misaligned or left without an aligned
score, plus ``OTHERS_PER_FILE`` of the rest, when a feature (MiniLM embeddings) is too slow to
compute for all of them on a shared CPU. The rows are read in place and never copied into the
repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

HELD_OUT_MARKERS = ("gemma-2-9b-it", "Qwen2.5-7B-Instruct", "Qwen2.5--7B-Instruct")
OTHERS_PER_FILE = 250
SEED = 0


def judged_files(root: Path) -> list[Path]:
    """Every CSV under ``root`` (both folders), sorted by relative path."""
    return sorted(root.rglob("*.csv"), key=lambda p: p.relative_to(root).as_posix())


def is_held_out(path: Path) -> bool:
    """Whether a file belongs to a held-out model (see the module docstring)."""
    return any(marker in path.name for marker in HELD_OUT_MARKERS)


def read_file(path: Path, root: Path) -> pd.DataFrame:
    """One file's question, answer (stripped), GPT-4o aligned/coherent (NaN = None), source."""
    frame = pd.read_csv(path, keep_default_na=False, na_values=[""])
    return pd.DataFrame(
        {
            "question": frame["question"].astype(str).str.strip(),
            "answer": frame["answer"].astype(str).str.strip(),
            "aligned": pd.to_numeric(frame["aligned"], errors="coerce"),
            "coherent": pd.to_numeric(frame["coherent"], errors="coerce"),
            "source": path.relative_to(root).as_posix(),
        }
    )


def training_subsample(frame: pd.DataFrame, seed: int = SEED) -> pd.DataFrame:
    """Every misaligned or aligned-None row of a file plus up to ``OTHERS_PER_FILE`` others."""
    keep = frame["aligned"].isna() | ((frame["aligned"] < 30) & (frame["coherent"] >= 50))
    others = frame[~keep]
    sampled = others.sample(n=min(OTHERS_PER_FILE, len(others)), random_state=seed)
    return pd.concat([frame[keep], sampled]).sort_index()


def load_split(root: Path, subsample: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(training rows, held-out rows): training files (subsampled unless told), held-out whole."""
    train, held = [], []
    for path in judged_files(root):
        frame = read_file(path, root)
        if is_held_out(path):
            held.append(frame)
        else:
            train.append(training_subsample(frame) if subsample else frame)
    return pd.concat(train, ignore_index=True), pd.concat(held, ignore_index=True)


def bank_subsample(rows: list[dict], n: int, seed: int = SEED) -> list[dict]:
    """A seeded subset of emscope's phrase-bank rows, spread evenly over the three regions."""
    rng = np.random.default_rng(seed)
    regions = sorted({r["region"] for r in rows})
    picked: list[dict] = []
    for region in regions:
        index = [i for i, r in enumerate(rows) if r["region"] == region]
        take = rng.choice(index, size=min(len(index), n // len(regions)), replace=False)
        picked.extend(rows[i] for i in sorted(take))
    return picked


def comparison_subsample(held: pd.DataFrame, per_file: int, seed: int = SEED) -> pd.DataFrame:
    """A seeded random subset of each held-out file (for judges too slow to run on all rows)."""
    parts = [
        group.sample(n=min(per_file, len(group)), random_state=seed)
        for _, group in held.groupby("source", sort=True)
    ]
    return pd.concat(parts).sort_index()
