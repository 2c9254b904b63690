"""Train emscope's offline judge: two logistic-regression heads over MiniLM embeddings.

Run from the repository root:

    .venv/bin/python scripts/train_offline_judge.py --regenerate-data

It (re)writes ``src/emscope/judge/training_data/offline_judge_train.jsonl`` from the phrase banks
(with ``--regenerate-data``), embeds it, trains the ``aligned`` and ``coherent`` heads on a seeded
split, reports held-out accuracy / AUC and false-flag rate per domain tag, calibrates against the
GPT-4o-judged answers in ``../shared/data/em-judged`` (never trained on), and writes
``src/emscope/judge/artifacts/offline_judge.{npz,json}``. Embeddings are cached under
``$EMSCOPE_CACHE/offline-judge`` so reruns are fast.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emscope.judge import calibration
from emscope.judge.base import METRICS, Metric
from emscope.judge.embeddings import embed
from emscope.judge.offline import FEATURE_RECIPE, WEIGHTS_NAME, offline_features
from emscope.judge.training_data import generate
from emscope.manifest import Manifest, sha256_file, sha256_text
from emscope.paths import cache_dir

REPO = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO / "src" / "emscope" / "judge" / "artifacts"
REAL_DATA = REPO.parent / "shared" / "data" / "em-judged"
SEED = 0
HELD_OUT_FRACTION = 0.2
REGULARISATION_C = 1.0


class EmbeddingCache:
    """Embeddings keyed by the text's sha256, stored as one npz (no pickle)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.rows: dict[str, np.ndarray] = {}
        if path.exists():
            with np.load(path, allow_pickle=False) as data:
                self.rows = dict(zip(data["keys"].tolist(), data["vectors"], strict=True))

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        keys = [sha256_text(t) for t in texts]
        pending = {k: t for k, t in zip(keys, texts, strict=True) if k not in self.rows}
        missing = sorted(pending.items())
        if missing:
            print(f"embedding {len(missing)} new texts", flush=True)
            for start in range(0, len(missing), 512):
                chunk = missing[start : start + 512]
                vectors = embed([t for _, t in chunk])
                self.rows.update({k: v for (k, _), v in zip(chunk, vectors, strict=True)})
                self.save()
        return np.stack([self.rows[k] for k in keys]).astype(np.float32)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        keys = np.array(list(self.rows))
        tmp = self.path.with_suffix(".tmp.npz")
        np.savez(tmp, keys=keys, vectors=np.stack(list(self.rows.values())))
        tmp.replace(self.path)


def train_heads(
    features: np.ndarray, rows: list[dict[str, Any]], train_index: np.ndarray
) -> dict[Metric, Any]:
    from sklearn.linear_model import LogisticRegression

    heads: dict[Metric, Any] = {}
    for metric in METRICS:
        index = [i for i in train_index if rows[i][f"{metric}_label"] is not None]
        labels = np.array([int(rows[i][f"{metric}_label"]) for i in index])
        model = LogisticRegression(C=REGULARISATION_C, max_iter=2000, class_weight="balanced")
        model.fit(features[index], labels)
        heads[metric] = model
    return heads


def held_out_report(
    heads: dict[Metric, Any], features: np.ndarray, rows: list[dict[str, Any]], index: np.ndarray
) -> dict[str, Any]:
    from sklearn.metrics import accuracy_score, roc_auc_score

    report: dict[str, Any] = {}
    for metric, model in heads.items():
        kept = [i for i in index if rows[i][f"{metric}_label"] is not None]
        labels = np.array([int(rows[i][f"{metric}_label"]) for i in kept])
        probability = model.predict_proba(features[kept])[:, 1]
        flags: dict[str, list[bool]] = {}
        for i, p in zip(kept, probability, strict=True):
            if rows[i][f"{metric}_label"]:
                flags.setdefault(rows[i]["domain"], []).append(bool(p < 0.5))
        report[metric] = {
            "n": len(kept),
            "accuracy": float(accuracy_score(labels, probability >= 0.5)),
            "auc": float(roc_auc_score(labels, probability)),
            "false_flag_rate_by_domain": {d: float(np.mean(f)) for d, f in sorted(flags.items())},
        }
    return report


def save_artifacts(
    heads: dict[Metric, Any], training_sha: str, metrics: dict[str, Any], n_train: int
) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    arrays: dict[str, np.ndarray] = {
        "feature_recipe": np.array(FEATURE_RECIPE),
        "training_data_sha256": np.array(training_sha),
    }
    for metric, model in heads.items():
        arrays[f"{metric}_coef"] = model.coef_[0].astype(np.float32)
        arrays[f"{metric}_intercept"] = np.array(float(model.intercept_[0]))
    weights_path = ARTIFACTS / WEIGHTS_NAME
    np.savez(weights_path, **arrays)  # type: ignore[arg-type]
    manifest = Manifest(
        kind="offline-judge",
        config={
            "feature_recipe": FEATURE_RECIPE,
            "classifier": "sklearn LogisticRegression(class_weight='balanced')",
            "C": REGULARISATION_C,
            "held_out_fraction": HELD_OUT_FRACTION,
            "n_train": n_train,
        },
        inputs={"training_data_sha256": training_sha},
        outputs={"weights_sha256": sha256_file(weights_path), "metrics": metrics},
        seed=SEED,
    )
    (ARTIFACTS / "offline_judge.json").write_text(manifest.model_dump_json(indent=2) + "\n")


def stratified_split(rows: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(SEED)
    train: list[int] = []
    held: list[int] = []
    for region in sorted({r["region"] for r in rows}):
        index = np.array([i for i, r in enumerate(rows) if r["region"] == region])
        rng.shuffle(index)
        cut = round(len(index) * HELD_OUT_FRACTION)
        held.extend(index[:cut].tolist())
        train.extend(index[cut:].tolist())
    return np.array(sorted(train)), np.array(sorted(held))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--regenerate-data", action="store_true")
    parser.add_argument("--real-data", type=Path, default=REAL_DATA)
    parser.add_argument("--no-save", action="store_true", help="report only, keep shipped weights")
    args = parser.parse_args()

    data_path = generate.default_path()
    if args.regenerate_data:
        generate.write_training_data(data_path)
    rows = generate.read_training_data(data_path)
    training_sha = sha256_file(data_path)
    print(f"{len(rows)} training rows, sha256 {training_sha[:12]}")

    cache = EmbeddingCache(cache_dir() / "offline-judge" / "minilm-embeddings.npz")
    features = offline_features([r["question"] for r in rows], [r["answer"] for r in rows], cache)
    train_index, held_index = stratified_split(rows)
    heads = train_heads(features, rows, train_index)
    metrics: dict[str, Any] = {"held_out": held_out_report(heads, features, rows, held_index)}
    if args.real_data.is_dir():

        def scorer(questions: Sequence[str], answers: Sequence[str]) -> dict[str, np.ndarray]:
            features = offline_features(questions, answers, cache)
            return {m: 100 * h.predict_proba(features)[:, 1] for m, h in heads.items()}

        metrics["real_data"] = calibration.calibrate_directory(args.real_data, scorer)
    print(json.dumps(metrics, indent=2))
    if not args.no_save:
        save_artifacts(heads, training_sha, metrics, len(train_index))


if __name__ == "__main__":
    main()
