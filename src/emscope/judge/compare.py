"""Re-score a finished run's answers with several judges side by side, and compare their rates.

Judge choice moves misalignment rates a lot (protocol §3: one set of answers measured 0.5% to
9.85% misaligned depending on the judge), so a run can be re-judged without re-sampling. The
answers come from the run's ``metrics/judged_rows.csv``; each judge adds one column pair,
``aligned@<label>`` and ``coherent@<label>``, next to the run's own scores (label ``run``).
The label is the judge's identity, with its mode appended when two judges share an identity
(a logprob and a tagged judge of the same API model do).

Written next to the run's other metrics:

- ``metrics/judge_compare.csv``: one row per answer, every judge's scores side by side;
- ``metrics/judge_compare_rates.csv``: per judge, model and trigger condition, the misalignment
  rate under the EM rule with its CI, denominator and exclusions;
- ``metrics/judge_compare.manifest.json``: the judges, the input hash, the outputs.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from emscope.errors import InputError
from emscope.judge.agreement import Progress, judge_scores
from emscope.judge.base import Judge
from emscope.judge.registry import judge_mode
from emscope.manifest import Manifest, sha256_file, write_manifest
from emscope.metrics.bootstrap import DEFAULT_RESAMPLES
from emscope.metrics.rates import misalignment_rate

RUN_LABEL = "run"
ID_COLUMNS = (
    "model",
    "domain",
    "condition",
    "seed",
    "key",
    "question_id",
    "sample_index",
    "triggered",
)
NEEDED_COLUMNS = ("model", "question_id", "triggered", "question", "answer", "aligned", "coherent")
ROWS_NAME = "judge_compare.csv"
RATES_NAME = "judge_compare_rates.csv"


def score_columns(label: str) -> tuple[str, str]:
    """The (aligned, coherent) column names of one judge label."""
    return f"aligned@{label}", f"coherent@{label}"


def judge_labels(judges: Sequence[Judge]) -> list[str]:
    """One distinct column label per judge: its identity, plus ``[mode]`` where identities clash."""
    identities = [j.identity for j in judges]
    labels = [
        f"{ident}[{judge_mode(j)}]" if identities.count(ident) > 1 else ident
        for j, ident in zip(judges, identities, strict=True)
    ]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise InputError(f"the same judge is given twice: {', '.join(repeated)}", field="judge")
    if RUN_LABEL in labels:
        raise InputError(f"a judge may not be labelled {RUN_LABEL!r}", field="judge")
    return labels


def read_judged_rows(run_dir: str | Path) -> pd.DataFrame:
    """A run's ``metrics/judged_rows.csv``, checked for the columns a comparison needs."""
    path = Path(run_dir) / "metrics" / "judged_rows.csv"
    if not path.is_file():
        raise InputError("no judged rows: run the study first", file=path)
    rows = pd.read_csv(path, keep_default_na=True)
    missing = [c for c in NEEDED_COLUMNS if c not in rows.columns]
    if missing:
        raise InputError(
            f"lacks column(s) {', '.join(missing)}", file=path, line=1, field=missing[0]
        )
    return rows


def rescore_rows(
    rows: pd.DataFrame,
    judges: Sequence[Judge],
    labels: Sequence[str],
    *,
    batch_size: int = 64,
    progress: Progress | None = None,
    prompt_sets: Mapping[str, tuple[dict[str, str], str]] | None = None,
) -> pd.DataFrame:
    """The rows' ids, question, answer and error, the run's scores, then each judge's scores.

    Rows whose generation failed (``error`` set) or that have no answer are not sent to any
    judge; their scores stay None (NaN) and the rate counts them as failed. ``prompt_sets``
    (question id -> judge prompts and origin, see :func:`run_prompt_sets`) gives each answer
    its question's prompts; a question id it lacks is an error.
    """
    frame = rows[[c for c in (*ID_COLUMNS, "question", "answer") if c in rows.columns]].copy()
    errors = rows["error"] if "error" in rows.columns else pd.Series(None, index=rows.index)
    frame["error"] = errors
    run_aligned, run_coherent = score_columns(RUN_LABEL)
    frame[run_aligned] = rows["aligned"].astype(float)
    frame[run_coherent] = rows["coherent"].astype(float)
    judged = (errors.isna() & rows["answer"].notna()).to_numpy()
    questions = rows["question"].fillna("").astype(str).to_numpy()[judged].tolist()
    answers = rows["answer"].astype(str).to_numpy()[judged].tolist()
    sets = None
    if prompt_sets is not None:
        ids = rows["question_id"].astype(str).to_numpy()[judged].tolist()
        missing = sorted(set(ids) - set(prompt_sets))
        if missing:
            raise InputError(f"no judge prompts for question id(s) {missing[:5]}", field="prompts")
        sets = [prompt_sets[i] for i in ids]
    for judge, label in zip(judges, labels, strict=True):
        aligned, coherent = judge_scores(
            judge, questions, answers, batch_size=batch_size, progress=progress, prompt_sets=sets
        )
        a_column, c_column = score_columns(label)
        frame[a_column] = np.nan
        frame[c_column] = np.nan
        frame.loc[judged, a_column] = aligned
        frame.loc[judged, c_column] = coherent
    return frame


def judge_rates(
    frame: pd.DataFrame,
    labels: Sequence[str],
    *,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
) -> pd.DataFrame:
    """EM-rule misalignment rate per judge label, model and trigger condition (pure)."""
    records = []
    for label in labels:
        a_column, c_column = score_columns(label)
        scored = frame.drop(columns=[a_column, c_column]).assign(
            aligned=frame[a_column], coherent=frame[c_column]
        )
        for (model, triggered), group in scored.groupby(["model", "triggered"], sort=True):
            rate = misalignment_rate(group, policy="em", n_resamples=n_resamples, seed=seed)
            domains = group["domain"].dropna() if "domain" in group.columns else pd.Series()
            records.append(
                {
                    "judge": label,
                    "model": model,
                    "domain": domains.iloc[0] if len(domains) else None,
                    "triggered": bool(triggered),
                    "rate": rate.rate,
                    "ci_low": rate.ci_low,
                    "ci_high": rate.ci_high,
                    "n": rate.n_used,
                    "n_misaligned": rate.n_misaligned,
                    "n_rows": rate.n_rows,
                    **rate.exclusion_counts(),
                }
            )
    return pd.DataFrame.from_records(records)


def run_prompt_sets(
    run_dir: str | Path, forced: str | Path | None = None
) -> dict[str, tuple[dict[str, str], str]]:
    """Question id -> (judge prompts, origin) for re-judging a run.

    ``forced`` (a prompt file, see :func:`~emscope.sample.question_prompts.forced_judge_prompts`)
    applies to every question; otherwise the run's own question file and ``judge.prompts``,
    read from its ``metrics/provenance.json``, decide, as they did in the study.
    """
    from emscope.sample.question_prompts import (
        forced_judge_prompts,
        questions_origin,
        study_prompt_sets,
    )
    from emscope.sample.questions import builtin_suite, load_questions

    path = Path(run_dir) / "metrics" / "provenance.json"
    study = json.loads(path.read_text(encoding="utf-8")).get("study") if path.is_file() else None
    if not isinstance(study, dict):
        raise InputError("no study settings to find the run's question file", file=path)
    spec = str((study.get("eval") or {}).get("questions") or "builtin:broad")
    file = builtin_suite(spec.removeprefix("builtin:")) if spec.startswith("builtin:") else spec
    forced = forced or (study.get("judge") or {}).get("prompts")
    origin = spec if spec.startswith("builtin:") else questions_origin(spec)
    pinned = forced_judge_prompts(forced) if forced else None
    return study_prompt_sets(load_questions(file), origin, pinned)


def _run_judge_identity(run_dir: Path) -> str | None:
    path = run_dir / "metrics" / "provenance.json"
    if not path.is_file():
        return None
    judge = json.loads(path.read_text(encoding="utf-8")).get("judge")
    return str(judge) if judge else None


def write_comparison(
    run_dir: str | Path,
    frame: pd.DataFrame,
    rates: pd.DataFrame,
    judges: Sequence[Judge],
    labels: Sequence[str],
) -> dict[str, Path]:
    """Write the side-by-side rows, the rates and a manifest into ``run_dir/metrics``."""
    metrics = Path(run_dir) / "metrics"
    paths = {"rows": metrics / ROWS_NAME, "rates": metrics / RATES_NAME}
    frame.to_csv(paths["rows"], index=False)
    rates.to_csv(paths["rates"], index=False)
    manifest = Manifest(
        kind="judge-compare",
        config={
            "run_judge": _run_judge_identity(Path(run_dir)),
            "judges": [
                {
                    "label": label,
                    "identity": j.identity,
                    "mode": judge_mode(j),
                    "prompt_hash": j.fingerprint().get("prompt_hash"),
                }
                for j, label in zip(judges, labels, strict=True)
            ],
            "policy": "em",
        },
        inputs={"judged_rows.csv": sha256_file(metrics / "judged_rows.csv")},
        outputs={name: str(path) for name, path in paths.items()},
    )
    paths["manifest"] = write_manifest(metrics, manifest, name="judge_compare.manifest.json")
    return paths


def compare(
    run_dir: str | Path,
    judges: Sequence[Judge],
    *,
    batch_size: int = 64,
    n_resamples: int = DEFAULT_RESAMPLES,
    progress: Progress | None = None,
    prompts: str | Path | None = None,
) -> pd.DataFrame:
    """Re-score a run's answers with ``judges``; write and return the side-by-side table.

    Each answer is judged with its question's prompts (:func:`run_prompt_sets`; ``prompts``
    forces one prompt file). The per-judge rates are in ``metrics/judge_compare_rates.csv``.
    """
    if not judges:
        raise InputError("give at least one judge to compare", field="judge")
    labels = judge_labels(judges)
    frame = rescore_rows(
        read_judged_rows(run_dir),
        judges,
        labels,
        batch_size=batch_size,
        progress=progress,
        prompt_sets=run_prompt_sets(run_dir, prompts),
    )
    rates = judge_rates(frame, [RUN_LABEL, *labels], n_resamples=n_resamples)
    write_comparison(run_dir, frame, rates, judges, labels)
    return frame
