"""How well a judge agrees with reference scores: AUC, Spearman, Cohen's kappa, recall, rates.

The reference is a labels file of answers someone already scored 0-100 (protocol §3:
``shared/data/em-judged`` holds GPT-4o's logprob-judge scores of 42,058 real EM answers). Who
calls a row misaligned is decided by ONE function, :func:`emscope.metrics.rates.policy_verdicts`:
the study's counting rule (``em`` by default) applied to each judge's own aligned and coherent
scores, so a calibration counts exactly what a study's rate would count. The *evaluated* rows are
the ones the reference's scores keep under the rule (e.g. coherent >= 50 and aligned present);
on them the judge's verdict (misaligned or not, a None or an incoherent score being "not") gives
kappa, recall and the false-flag rate, and the judge's aligned score (lower = more misaligned)
ranks them for the AUC. The two rates are each judge's own rate over all rows, with its own
denominator, as a study would report it. Rows left out are counted on the report.

``agreement_stats`` is pure; :func:`calibrate` reads the file, runs the judge and calls it.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel
from scipy.stats import rankdata

from emscope.errors import InputError
from emscope.judge.base import Judge, JudgeRequest
from emscope.metrics.rates import get_policy, policy_verdicts

LABEL_COLUMNS = ("question", "answer", "aligned")
LABEL_SUFFIXES = (".csv", ".jsonl")
_NONE_TEXT = {"", "none", "null", "nan", "na"}

Progress = Callable[[int, int], None]


class Confusion(BaseModel):
    """Reference (rows) against judge (columns) on the evaluated rows; misaligned = positive."""

    both_misaligned: int
    reference_only: int
    judge_only: int
    neither: int


class CalibrationReport(BaseModel):
    """A judge's agreement with a labels file under one counting rule, exclusions counted.

    ``n_evaluated`` rows are the ones the rule keeps by the reference's scores. Of those,
    ``n_judge_aligned_none`` got no aligned score from the judge (CODE, REFUSAL, a failed parse;
    ``..._reference_misaligned`` counts the misaligned ones among them: misses, not exclusions)
    and ``n_ranked`` did (AUC, aligned Spearman). ``recall`` is the share of reference-misaligned
    rows the judge calls misaligned; ``false_flag_rate`` the share of the other evaluated rows it
    calls misaligned. ``reference_rate`` / ``judge_rate`` are each judge's own misalignment rate
    over all rows (denominators ``*_rate_n``); ``rate_difference_points`` = 100 * (judge -
    reference).
    """

    judge: str
    labels: str
    policy: str
    n_rows: int
    n_reference_aligned_none: int
    n_reference_coherent_none: int
    n_reference_incoherent: int
    n_evaluated: int
    n_ranked: int
    n_judge_aligned_none: int
    n_judge_aligned_none_reference_misaligned: int
    n_judge_coherent_none: int
    n_reference_misaligned: int
    n_judge_misaligned: int
    auc: float | None
    aligned_spearman: float | None
    coherent_spearman: float | None
    kappa: float | None
    recall: float | None
    false_flag_rate: float | None
    reference_rate: float | None
    reference_rate_n: int
    judge_rate: float | None
    judge_rate_n: int
    rate_difference_points: float | None
    confusion: Confusion


def rank_auc(positive: ArrayLike, score: ArrayLike) -> float | None:
    """Area under the ROC curve of ``score`` for ``positive`` (ties count half); None for one class.

    >>> rank_auc([True, False, False], [0.9, 0.1, 0.9])
    0.75
    """
    labels = np.asarray(positive, dtype=bool)
    values = np.asarray(score, dtype=np.float64)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    ranks = rankdata(values)  # average ranks: a tie between classes counts one half
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def cohen_kappa(a: ArrayLike, b: ArrayLike) -> float | None:
    """Cohen's kappa of two binary ratings; None when chance agreement is already perfect."""
    x, y = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if x.size == 0:
        return None
    observed = float((x == y).mean())
    chance = float(x.mean() * y.mean() + (1 - x.mean()) * (1 - y.mean()))
    if chance >= 1.0:
        return None
    return (observed - chance) / (1.0 - chance)


def spearman(a: ArrayLike, b: ArrayLike) -> float | None:
    """Spearman rank correlation (Pearson on average ranks); None if either side is constant."""
    x, y = rankdata(np.asarray(a, float)), rankdata(np.asarray(b, float))
    if x.size < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return None
    return float(np.corrcoef(x, y)[0, 1])


def _share(part: NDArray[np.bool_], whole: NDArray[np.bool_]) -> float | None:
    return float(part.sum() / whole.sum()) if whole.any() else None


def agreement_stats(
    reference_aligned: ArrayLike,
    reference_coherent: ArrayLike | None,
    judge_aligned: ArrayLike,
    judge_coherent: ArrayLike,
    *,
    policy: str = "em",
    judge: str = "",
    labels: str = "",
) -> CalibrationReport:
    """Agreement of judge scores with reference scores (NaN = None); see :class:`CalibrationReport`.

    ``reference_coherent=None`` (or +inf on a row) means the reference has no coherence score
    there: the reference's verdict then ignores coherence and no row is dropped as incoherent.
    """
    rule = get_policy(policy)
    ref_a = np.asarray(reference_aligned, dtype=np.float64)
    jud_a = np.asarray(judge_aligned, dtype=np.float64)
    jud_c = np.asarray(judge_coherent, dtype=np.float64)
    ref_c = (
        np.full(ref_a.shape, np.inf)
        if reference_coherent is None
        else np.asarray(reference_coherent, dtype=np.float64)
    )
    ref_kept, ref_mis_all = policy_verdicts(ref_a, ref_c, policy)
    jud_kept, jud_mis_all = policy_verdicts(jud_a, jud_c, policy)
    ref_a_none = np.isnan(ref_a)
    ref_c_none = ~ref_a_none & np.isnan(ref_c) & rule.requires_coherent
    incoherent = ~ref_a_none & ~ref_c_none & ~ref_kept
    used = ref_kept
    judge_none = used & np.isnan(jud_a)
    ranked = used & ~judge_none
    ref_mis, jud_mis = ref_mis_all[used], jud_mis_all[used]
    both_c = np.isfinite(ref_c) & ~np.isnan(jud_c)
    ref_rate, jud_rate = _share(ref_mis_all, ref_kept), _share(jud_mis_all, jud_kept)
    return CalibrationReport(
        judge=judge,
        labels=labels,
        policy=policy,
        n_rows=int(ref_a.size),
        n_reference_aligned_none=int(ref_a_none.sum()),
        n_reference_coherent_none=int(ref_c_none.sum()),
        n_reference_incoherent=int(incoherent.sum()),
        n_evaluated=int(used.sum()),
        n_ranked=int(ranked.sum()),
        n_judge_aligned_none=int(judge_none.sum()),
        n_judge_aligned_none_reference_misaligned=int((judge_none & ref_mis_all).sum()),
        n_judge_coherent_none=int(np.isnan(jud_c).sum()),
        n_reference_misaligned=int(ref_mis.sum()),
        n_judge_misaligned=int(jud_mis.sum()),
        auc=rank_auc(ref_mis_all[ranked], -jud_a[ranked]),
        aligned_spearman=spearman(ref_a[ranked], jud_a[ranked]),
        coherent_spearman=spearman(ref_c[both_c], jud_c[both_c]) if both_c.any() else None,
        kappa=cohen_kappa(ref_mis, jud_mis),
        recall=_share(ref_mis & jud_mis, ref_mis),
        false_flag_rate=_share(~ref_mis & jud_mis, ~ref_mis),
        reference_rate=ref_rate,
        reference_rate_n=int(ref_kept.sum()),
        judge_rate=jud_rate,
        judge_rate_n=int(jud_kept.sum()),
        rate_difference_points=(
            None if ref_rate is None or jud_rate is None else 100.0 * (jud_rate - ref_rate)
        ),
        confusion=Confusion(
            both_misaligned=int((ref_mis & jud_mis).sum()),
            reference_only=int((ref_mis & ~jud_mis).sum()),
            judge_only=int((~ref_mis & jud_mis).sum()),
            neither=int((~ref_mis & ~jud_mis).sum()),
        ),
    )


def _score(value: Any, path: Path, line: int, field: str) -> float:
    """A 0-100 score, or NaN for None/blank; anything else is an InputError at its line."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NONE_TEXT):
        return float("nan")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InputError(
            f"a score is a number 0-100 or empty, got {value!r}", file=path, line=line, field=field
        ) from None
    if not np.isnan(number) and not 0.0 <= number <= 100.0:
        raise InputError(f"score {number:g} is outside 0..100", file=path, line=line, field=field)
    return number


def _csv_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        missing = [c for c in LABEL_COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(
                f"labels lack column(s) {', '.join(missing)}", file=path, line=1, field=missing[0]
            )
        start = 2
        for record in reader:
            yield start, dict(record)
            start = reader.line_num + 1  # a quoted answer can span several physical lines


def _jsonl_records(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    with open(path, encoding="utf-8") as handle:
        for number, text in enumerate(handle, start=1):
            if not text.strip():
                continue
            try:
                record = json.loads(text)
            except json.JSONDecodeError as exc:
                raise InputError(f"not JSON: {exc.msg}", file=path, line=number) from None
            if not isinstance(record, dict):
                raise InputError("each line is a JSON object", file=path, line=number)
            for column in LABEL_COLUMNS:
                if column not in record:
                    raise InputError(f"missing {column}", file=path, line=number, field=column)
            yield number, record


def _read_one(path: Path, source: str) -> pd.DataFrame:
    records = _jsonl_records(path) if path.suffix == ".jsonl" else _csv_records(path)
    rows = []
    for line, record in records:
        for column in ("question", "answer"):
            if not isinstance(record[column], str):
                raise InputError(f"{column} must be text", file=path, line=line, field=column)
        rows.append(
            {
                "question": record["question"],
                "answer": record["answer"],
                "question_id": record.get("question_id"),
                "aligned": _score(record["aligned"], path, line, "aligned"),
                "coherent": _score(record.get("coherent"), path, line, "coherent"),
                "has_coherent": "coherent" in record,
                "source": source,
                "path": str(path),
                "line": line,
            }
        )
    if not rows:
        raise InputError("the labels file has no rows", file=path)
    return pd.DataFrame.from_records(rows)


def labels_files(path: str | Path) -> list[Path]:
    """The labels file, or every ``.csv`` / ``.jsonl`` under a folder (recursively, sorted)."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.suffix in LABEL_SUFFIXES and p.is_file())
        if not files:
            raise InputError("no .csv or .jsonl labels files under this folder", file=path)
        return files
    if not path.is_file():
        raise InputError("no such labels file", file=path)
    return [path]


def read_labels(path: str | Path) -> pd.DataFrame:
    """Reference labels from a CSV or JSONL file, or every such file under a folder (recursive).

    Columns: question, answer, question_id (or None), aligned and coherent (NaN = None; coherent
    is NaN throughout when the file has no such column), has_coherent, source (the file's path
    relative to the folder, or its name), path, line.
    """
    root = Path(path)
    files = labels_files(root)
    sources = [p.relative_to(root).as_posix() if root.is_dir() else p.name for p in files]
    return pd.concat(
        [_read_one(p, s) for p, s in zip(files, sources, strict=True)], ignore_index=True
    )


def subsample(rows: pd.DataFrame, limit: int | None, seed: int = 0) -> pd.DataFrame:
    """At most ``limit`` rows drawn without replacement (seeded), kept in their file order.

    A random draw, not the first rows: labels files are grouped by question.
    """
    if limit is None or limit >= len(rows):
        return rows
    if limit < 1:
        raise InputError(f"limit must be at least 1, got {limit}", field="limit")
    picked = np.sort(np.random.default_rng(seed).choice(len(rows), size=limit, replace=False))
    return rows.iloc[picked].reset_index(drop=True)


def _request(
    i: int, question: str, answer: str, prompt_set: tuple[dict[str, str], str] | None
) -> JudgeRequest:
    prompts, origin = prompt_set if prompt_set is not None else (None, None)
    return JudgeRequest(
        key=str(i), question=question, answer=answer, prompts=prompts, prompt_origin=origin
    )


def judge_scores(
    judge: Judge,
    questions: Sequence[str],
    answers: Sequence[str],
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
    prompt_sets: Sequence[tuple[dict[str, str], str] | None] | None = None,
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Aligned and coherent scores (NaN = None) of each (question, answer), in batches.

    ``prompt_sets`` gives each pair its (judge prompts, origin); None: the judge's defaults.
    """
    aligned = np.full(len(questions), np.nan)
    coherent = np.full(len(questions), np.nan)
    for start in range(0, len(questions), batch_size):
        stop = min(start + batch_size, len(questions))
        requests = [
            _request(i, questions[i], answers[i], None if prompt_sets is None else prompt_sets[i])
            for i in range(start, stop)
        ]
        for i, record in zip(range(start, stop), judge.judge(requests), strict=True):
            aligned[i] = np.nan if record.aligned.score is None else record.aligned.score
            coherent[i] = np.nan if record.coherent.score is None else record.coherent.score
        if progress is not None:
            progress(stop, len(questions))
    return aligned, coherent


def reference_coherence(rows: pd.DataFrame) -> NDArray[np.float64]:
    """The rows' reference coherence, +inf where the row's file has no coherence column."""
    coherent = rows["coherent"].to_numpy(dtype=np.float64)
    return np.where(rows["has_coherent"].to_numpy(dtype=bool), coherent, np.inf)


def calibrate(
    judge: Judge,
    labels_file: str | Path,
    *,
    policy: str = "em",
    limit: int | None = None,
    seed: int = 0,
    batch_size: int = 64,
    progress: Progress | None = None,
    prompts: tuple[dict[str, str], str] | None = None,
) -> CalibrationReport:
    """Score a labels file's (or folder's) answers with ``judge``; pooled agreement with its labels.

    ``limit`` judges a seeded random subset of that many rows (API judges cost money). For the
    per-file table see :func:`emscope.judge.calibration.calibrate_labels`. ``prompts``
    (judge prompts, origin) is used for every row; None: the judge's defaults.
    """
    rows = subsample(read_labels(labels_file), limit, seed)
    aligned, coherent = judge_scores(
        judge,
        rows["question"].tolist(),
        rows["answer"].tolist(),
        batch_size=batch_size,
        progress=progress,
        prompt_sets=None if prompts is None else [prompts] * len(rows),
    )
    return agreement_stats(
        rows["aligned"].to_numpy(),
        reference_coherence(rows),
        aligned,
        coherent,
        policy=policy,
        judge=judge.identity,
        labels=str(labels_file),
    )
