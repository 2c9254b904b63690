"""The answers viewer's data: judged rows, samples and judge records -> one JSON payload (pure).

The payload is columnar so the page can filter 100,000 answers on typed arrays: every text
column that repeats (model, family, domain, condition, question, system prompt, trigger,
verdict, reason) is a list of distinct values plus one integer code per row; scores are numbers
or None; answers and the judge's raw output are one entry per row.

Verdicts follow the report's counting rule (``policy``), per model and per triggered / not, so
the viewer shows exactly the rows the report counted: ``misaligned``, ``aligned`` or
``excluded`` with a reason (failed, refusal, code, no_score, judge_error, coherent_none,
incoherent, dropped_question).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd

from emscope.metrics.judged_rows import normalise_judged_rows
from emscope.metrics.rates import Policy, classify_rows

PAYLOAD_VERSION = 1
ONE_FAMILY = "all"
CODED_COLUMNS = (
    "model",
    "family",
    "domain",
    "condition",
    "question_id",
    "question",
    "system",
    "trigger",
    "verdict",
    "status",
    "reason",
    "judge",
)
# Judge probabilities below this are dropped from the raw output shown (they never move a score).
MIN_SHOWN_PROBABILITY = 1e-4
TOP_SHOWN = 20
STATUS_REASON = {
    "failed": "failed",
    "aligned_none": "no_score",
    "coherent_none": "coherent_none",
    "incoherent": "incoherent",
    "dropped_question": "dropped_question",
}
NON_NUMERIC_TOKENS = ("REFUSAL", "CODE")


def _text(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def _number(value: object) -> float | None:
    if value is None:
        return None
    number = float(value)  # type: ignore[arg-type]
    return None if math.isnan(number) else round(number, 2)


def _top_probabilities(raw: list[Any]) -> list[list[Any]]:
    """A logprob judge's ``[[token, logprob], ...]`` as ``[[token, probability], ...]``."""
    shown = []
    for token, logprob in raw:
        probability = math.exp(float(logprob))
        if probability >= MIN_SHOWN_PROBABILITY:
            shown.append([str(token), round(probability, 4)])
    return shown


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float replaced by None (JSON has no NaN)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def compact_raw(raw: Any) -> Any:
    """The judge's raw output of one metric, as the viewer shows it.

    Top-k logprobs become ``{"top": [[token, p], ...]}``; anything else (reasoning text, exact
    probabilities, an error) is kept as stored, non-finite numbers as None.
    """
    if (
        isinstance(raw, list)
        and raw
        and all(isinstance(p, list | tuple) and len(p) == 2 for p in raw)
        and all(isinstance(p[1], int | float) for p in raw)
    ):
        return {"top": _top_probabilities(raw)}
    if isinstance(raw, dict) and isinstance(raw.get("probs"), list) and len(raw["probs"]) == 101:
        # The exact local judge's distribution over the answers 0..100: its likely answers only.
        rest = {k: v for k, v in raw.items() if k != "probs"}
        likely = [
            (round(float(p), 4), n)
            for n, p in enumerate(raw["probs"])
            if float(p) >= MIN_SHOWN_PROBABILITY
        ]
        top = [[str(n), p] for p, n in sorted(likely, key=lambda pair: -pair[0])]
        return _finite({"top": top[:TOP_SHOWN], **rest})
    return _finite(raw)


def no_score_reason(raw: Any) -> str:
    """Why a judge gave no alignment score: ``refusal``, ``code``, ``judge_error`` or a parse
    failure (tagged judges), else ``no_score``."""
    if isinstance(raw, list) and raw and isinstance(raw[0], list | tuple):
        best = max(raw, key=lambda pair: float(pair[1]))
        token = str(best[0]).strip().upper()
        if token in NON_NUMERIC_TOKENS:
            return token.lower()
    if isinstance(raw, dict):
        if raw.get("error"):
            return "judge_error"
        text = "".join(str(raw.get("text") or "").upper().split())
        for token in NON_NUMERIC_TOKENS:
            if text == token or f"<SCORE>{token}</SCORE>" in text:
                return token.lower()
        if raw.get("failure"):
            return str(raw["failure"])
    return "no_score"


def verdicts(rows: pd.DataFrame, policy: Policy = "em") -> pd.DataFrame:
    """``verdict`` and ``status`` per row (index kept), by ``policy``, per model and trigger."""
    parts = []
    for _, group in rows.groupby(["model", "triggered"], sort=False, dropna=False):
        classified = classify_rows(group, policy=policy)
        verdict = classified["status"].map(lambda s: "aligned" if s == "used" else "excluded")
        verdict[classified["misaligned"]] = "misaligned"
        parts.append(pd.DataFrame({"verdict": verdict, "status": classified["status"]}))
    if not parts:
        return pd.DataFrame({"verdict": [], "status": []}, dtype=object)
    return pd.concat(parts).reindex(rows.index)


def _codes(values: list[str]) -> tuple[list[str], list[int]]:
    table: dict[str, int] = {}
    codes = [table.setdefault(v, len(table)) for v in values]
    return list(table), codes


def answers_payload(
    judged_rows: pd.DataFrame,
    samples: Mapping[str, Mapping[str, Any]],
    judgements: Mapping[str, Mapping[str, Any]],
    *,
    policy: Policy = "em",
    title: str = "emscope answers",
) -> dict[str, Any]:
    """The viewer's JSON payload from a run's stored rows (no I/O).

    ``judged_rows`` is ``metrics/judged_rows.csv`` (a ``family`` column is read where present,
    else every model is in one family); ``samples`` maps a row's ``key`` to its stored sample
    (``system``, ``trigger``); ``judgements`` maps it to its judge record (``aligned.raw``,
    ``coherent.raw``, ``judge``, ``mode``). ``judge_raw`` holds per row ``[aligned raw,
    coherent raw]`` (None when the answer was never judged); ``judge`` names judge and mode.
    """
    rows = normalise_judged_rows(judged_rows).reset_index(drop=True)
    judged = verdicts(rows, policy)
    keys = [_text(k) for k in rows["key"]] if "key" in rows.columns else [""] * len(rows)
    columns: dict[str, list[str]] = {
        "model": [_text(v) for v in rows["model"]],
        "family": (
            [_text(v) or ONE_FAMILY for v in rows["family"]]
            if "family" in rows.columns
            else [ONE_FAMILY] * len(rows)
        ),
        "domain": [_text(v) or "(base)" for v in rows["domain"]],
        "condition": [
            _text(v) or "(none)"
            for v in rows.get("condition", pd.Series([""] * len(rows), dtype=object))
        ],
        "question_id": [_text(v) for v in rows["question_id"]],
        "question": [_text(v) for v in rows.get("question", pd.Series([""] * len(rows)))],
        "system": [_text(samples.get(k, {}).get("system")) for k in keys],
        "trigger": [_text(samples.get(k, {}).get("trigger")) for k in keys],
        "verdict": [str(v) for v in judged["verdict"]],
        "status": [str(v) for v in judged["status"]],
    }
    reasons, judges, judge_raw = [], [], []
    for key, status in zip(keys, judged["status"], strict=True):
        record = judgements.get(key)
        aligned_raw = (record or {}).get("aligned", {}).get("raw")
        reason = STATUS_REASON.get(str(status), "")
        if reason == "no_score" and record is not None:
            reason = no_score_reason(aligned_raw)
        reasons.append(reason)
        judges.append("" if record is None else f"{record.get('judge')} ({record.get('mode')})")
        judge_raw.append(
            None
            if record is None
            else [compact_raw(aligned_raw), compact_raw((record.get("coherent") or {}).get("raw"))]
        )
    columns["judge"] = judges
    columns["reason"] = reasons
    dicts, codes = {}, {}
    for name in CODED_COLUMNS:
        dicts[name], codes[name] = _codes(columns[name])
    seeds = rows["seed"] if "seed" in rows.columns else pd.Series([None] * len(rows))
    return {
        "version": PAYLOAD_VERSION,
        "title": title,
        "policy": policy,
        "n": len(rows),
        "dicts": dicts,
        "codes": codes,
        "seed": [None if pd.isna(s) else int(s) for s in seeds],
        "sample_index": [
            None if pd.isna(s) else int(s)
            for s in rows.get("sample_index", pd.Series([None] * len(rows)))
        ],
        "triggered": [int(t) for t in rows["triggered"]],
        "aligned": [_number(v) for v in rows["aligned"]],
        "coherent": [_number(v) for v in rows["coherent"]],
        "answer": [_text(v) for v in rows.get("answer", pd.Series([""] * len(rows)))],
        "error": [_text(v) for v in rows["error"]],
        "judge_raw": judge_raw,
    }
