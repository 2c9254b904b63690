"""The table of judged answers that every metric reads, checked and normalised in one place.

One row per generated answer: ``model``, ``domain`` (None for the base model), ``question_id``,
``sample_index``, ``triggered``, ``aligned`` and ``coherent`` (0-100 or None), ``error`` (set
when generation failed and the answer was never judged) and optionally ``seed``.
"""

from __future__ import annotations

import pandas as pd

from emscope.errors import InputError

REQUIRED_COLUMNS = ("model", "question_id", "triggered", "aligned", "coherent")
SCORE_COLUMNS = ("aligned", "coherent")


def _blank_to_none(value: object) -> object:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return None
    if isinstance(value, str) and not value.strip():
        return None
    return value


def _check_scores(df: pd.DataFrame, column: str) -> None:
    scores = df[column]
    bad = scores.notna() & ((scores < 0) | (scores > 100))
    if bad.any():
        first = bad.idxmax()
        raise InputError(
            f"score {scores[first]!r} of question {df.at[first, 'question_id']!r} (row {first}) "
            "is outside 0..100",
            field=column,
        )


def normalise_judged_rows(df: pd.DataFrame) -> pd.DataFrame:
    """A copy with required columns checked, scores as floats (NaN = None), ``error`` as str|None.

    Missing optional columns are added: ``domain`` and ``error`` as None.
    """
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise InputError(
            f"judged rows lack column(s) {', '.join(missing)}; "
            f"have {', '.join(map(str, df.columns))}",
            field=missing[0],
        )
    out = df.copy()
    for column in SCORE_COLUMNS:
        try:
            out[column] = pd.to_numeric(out[column].map(_blank_to_none), errors="raise").astype(
                "float64"
            )
        except (TypeError, ValueError) as exc:
            raise InputError(f"scores must be numbers or None: {exc}", field=column) from exc
        _check_scores(out, column)
    for column in ("error", "domain"):
        values = out[column] if column in out.columns else pd.Series(None, index=out.index)
        out[column] = values.map(_blank_to_none).astype(object)
    if out["triggered"].isna().any():
        raise InputError("triggered must be True or False on every row", field="triggered")
    out["triggered"] = out["triggered"].astype(bool)
    out["question_id"] = out["question_id"].astype(str)
    return out
