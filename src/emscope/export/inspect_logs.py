"""Export a run's judged answers as Inspect AI eval logs, through inspect_ai's own log API.

One log per model, condition and trigger setting (``<model>_<condition>_<N|T>.eval``): each
sample is one answer (system + user turn as the model saw them, the answer as output) with
Inspect scores ``aligned`` and ``coherent`` (0-100, absent when the judge gave none) and
``misaligned`` (1 / 0 by the report's counting rule, absent when the row is excluded; the
reason is in the sample's metadata). ``inspect view --log-dir OUT`` shows the run.

inspect_ai is optional: ``pip install 'emscope[inspect]'``.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pandas as pd

from emscope.errors import EmscopeError
from emscope.metrics.judged_rows import normalise_judged_rows
from emscope.metrics.rates import Policy, get_policy
from emscope.report.answers_data import STATUS_REASON, compact_raw, no_score_reason, verdicts

if TYPE_CHECKING:
    from inspect_ai.log import EvalLog, EvalSample

SCORER = "emscope_judge"
# The first score is the one log lists show: the misalignment rate.
SCORE_NAMES = ("misaligned", "aligned", "coherent")


def _inspect() -> Any:
    try:
        import inspect_ai
    except ImportError as exc:
        raise EmscopeError(
            "exporting Inspect logs needs inspect_ai: pip install 'emscope[inspect]'"
        ) from exc
    return inspect_ai


def _text(value: object) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return str(value)


def log_name(model: str, condition: str | None, triggered: bool) -> str:
    """The file name of one group's log, safe on every filesystem."""
    stem = f"{model}_{condition or 'none'}_{'T' if triggered else 'N'}"
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", stem) + ".eval"


def _sample(
    row: pd.Series,
    sample: Mapping[str, Any],
    record: Mapping[str, Any] | None,
    verdict: str,
    status: str,
) -> EvalSample:
    from inspect_ai.log import EvalSample
    from inspect_ai.model import (
        ChatMessageAssistant,
        ChatMessageSystem,
        ChatMessageUser,
        ModelOutput,
    )
    from inspect_ai.scorer import Score

    system, trigger = _text(sample.get("system")), _text(sample.get("trigger"))
    messages: list[Any] = [ChatMessageSystem(content=system)] if system else []
    messages.append(ChatMessageUser(content=(trigger or "") + str(row["question"])))
    answer, error = _text(row.get("answer")), _text(row.get("error"))
    model = str(row["model"])
    output = ModelOutput.from_content(model=model, content=answer or "", error=error)
    raw = {
        m: compact_raw(((record or {}).get(m) or {}).get("raw")) for m in ("aligned", "coherent")
    }
    scores: dict[str, Score] = {}
    for metric in ("aligned", "coherent"):
        value = row[metric]
        if not pd.isna(value):
            scores[metric] = Score(
                value=float(value), answer=answer, explanation=json.dumps(raw[metric])
            )
    reason = STATUS_REASON.get(status, "")
    if reason == "no_score" and record is not None:
        reason = no_score_reason((record.get("aligned") or {}).get("raw"))
    if verdict != "excluded":
        scores["misaligned"] = Score(
            value=int(verdict == "misaligned"), answer=answer, explanation=f"verdict: {verdict}"
        )
    seed = row.get("seed")
    return EvalSample(
        id=str(row["key"]),
        epoch=1,
        input=messages,
        target="",
        messages=[*messages, ChatMessageAssistant(content=answer or "", model=model)],
        output=output,
        scores=scores,
        metadata={
            "question_id": str(row["question_id"]),
            "seed": None if seed is None or pd.isna(seed) else int(seed),
            "triggered": bool(row["triggered"]),
            "verdict": verdict,
            "exclusion": reason or None,
            "judge": (record or {}).get("judge"),
            "judge_mode": (record or {}).get("mode"),
        },
        error=None,
    )


def _short_id(*parts: str) -> str:
    """A stable 22-character id (Inspect's ids are that long) for one run / group."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:22]


def _results(samples: list[EvalSample], n: int) -> Any:
    from inspect_ai.log import EvalMetric, EvalResults, EvalScore

    scores = []
    for name in SCORE_NAMES:
        values = [
            float(cast(Any, s.scores)[name].value) for s in samples if name in (s.scores or {})
        ]
        metric = "rate" if name == "misaligned" else "mean"
        metrics = (
            {metric: EvalMetric(name=metric, value=sum(values) / len(values))} if values else {}
        )
        scores.append(
            EvalScore(
                name=name,
                scorer=SCORER,
                scored_samples=len(values),
                unscored_samples=n - len(values),
                metrics=metrics,
            )
        )
    return EvalResults(total_samples=n, completed_samples=n, scores=scores)


def eval_logs(
    judged_rows: pd.DataFrame,
    samples: Mapping[str, Mapping[str, Any]],
    judgements: Mapping[str, Mapping[str, Any]],
    *,
    run_name: str,
    policy: Policy = "em",
) -> dict[str, EvalLog]:
    """One Inspect ``EvalLog`` per (model, condition, triggered), by file name (no I/O)."""
    _inspect()
    from inspect_ai.log import EvalConfig, EvalDataset, EvalLog, EvalSpec, EvalStats

    get_policy(policy)
    rows = normalise_judged_rows(judged_rows).reset_index(drop=True)
    if "condition" not in rows.columns:
        rows["condition"] = None
    judged = verdicts(rows, policy)
    now = datetime.now(UTC).isoformat()
    logs: dict[str, EvalLog] = {}
    groups = rows.groupby(["model", rows["condition"].fillna(""), "triggered"], sort=True)
    for (model, condition, triggered), group in groups:
        eval_samples = [
            _sample(
                row,
                samples.get(str(row["key"]), {}),
                judgements.get(str(row["key"])),
                str(judged.at[index, "verdict"]),
                str(judged.at[index, "status"]),
            )
            for index, row in group.iterrows()
        ]
        name = log_name(str(model), str(condition) or None, bool(triggered))
        spec = EvalSpec(
            eval_id=_short_id(run_name, name, "eval"),
            run_id=_short_id(run_name),
            task_id=_short_id(run_name, name),
            created=now,
            task=f"emscope/{run_name}",
            task_args={"condition": condition or None, "triggered": bool(triggered)},
            dataset=EvalDataset(name=run_name, samples=len(eval_samples)),
            model=f"emscope/{model}",
            config=EvalConfig(),
            metadata={"policy": policy, "condition": condition or None},
        )
        logs[name] = EvalLog(
            status="success",
            eval=spec,
            results=_results(eval_samples, len(eval_samples)),
            stats=EvalStats(started_at=now, completed_at=now),
            samples=eval_samples,
        )
    return logs


def export_inspect(run_dir: Path, out_dir: Path | None = None, *, policy: str = "em") -> list[Path]:
    """Write the run's Inspect logs into ``out_dir`` (default ``run_dir/inspect``)."""
    inspect_ai = _inspect()
    from emscope.report.answers_page import load_run_answers

    rows, samples, judgements = load_run_answers(run_dir)
    target = out_dir or run_dir / "inspect"
    target.mkdir(parents=True, exist_ok=True)
    written = []
    logs = eval_logs(
        rows,
        samples,
        judgements,
        run_name=Path(run_dir).resolve().name,
        policy=cast(Policy, policy),
    )
    for name, log in logs.items():
        path = target / name
        inspect_ai.log.write_eval_log(log, str(path))
        written.append(path)
    return written
