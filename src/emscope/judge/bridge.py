"""The judge bridge: a monotone map from one judge's scores to a reference judge's 0-100 scale.

GPT-4o's judge is going away (protocol §3); to keep new results comparable with published
ones, score answers GPT-4o already scored with the new judge, fit a monotone map per metric
(isotonic regression, scikit-learn) from the new judge's aligned and coherent scores to
GPT-4o's, and report raw and bridged rates with the bridge's agreement measured on labels files
it was not fitted on. The map is stored as breakpoints in a versioned JSON artifact (never a
pickle) with the judge it belongs to, the labels files (sha256) and the agreement figures.

Two fits are offered, both monotone, both stored the same way:

- ``isotonic-regression``: the reference score's conditional mean given the judge's score.
- ``isotonic-equipercentile``: the judge's score quantiles mapped onto the reference's
  (equipercentile linking), so a threshold on bridged scores keeps the reference's rate on the
  fitted answers; a conditional mean pulls scores towards the middle and rarely crosses 30.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ValidationError

from emscope import __version__
from emscope.errors import InputError
from emscope.judge.base import METRICS, Judge, Metric
from emscope.judge.calibration import CalibrationTable, calibration_table
from emscope.manifest import sha256_file

BRIDGE_FORMAT: Literal["emscope-judge-bridge"] = "emscope-judge-bridge"
BRIDGE_VERSION = 1
Method = Literal["isotonic-regression", "isotonic-equipercentile"]
METHODS: tuple[Method, ...] = ("isotonic-equipercentile", "isotonic-regression")
BRIDGED = {metric: f"{metric}_bridged" for metric in METRICS}
QUANTILES = 201


class ScoreMap(BaseModel):
    """Piecewise-linear monotone map through breakpoints ``(x[i], y[i])``, flat beyond the ends."""

    x: list[float]
    y: list[float]

    def apply(self, values: ArrayLike) -> NDArray[np.float64]:
        """Mapped scores; NaN (None) stays NaN."""
        v = np.asarray(values, dtype=np.float64)
        out = np.interp(v, self.x, self.y)
        return np.where(np.isnan(v), np.nan, out)


class LabelsFile(BaseModel):
    """A labels file a bridge was fitted on or measured on."""

    source: str
    path: str
    sha256: str
    n_rows: int


class Bridge(BaseModel):
    """The artifact ``emscope judge calibrate --fit`` writes and a study's ``judge.calibration``
    names. ``agreement`` holds calibration tables keyed ``fitted_raw``, ``fitted_bridged``,
    ``held_out_raw`` and ``held_out_bridged``."""

    format: Literal["emscope-judge-bridge"] = BRIDGE_FORMAT
    version: int = BRIDGE_VERSION
    method: Method
    policy: str
    judge: str
    judge_fingerprint: dict[str, Any]
    maps: dict[Metric, ScoreMap]
    fitted_on: list[LabelsFile]
    held_out: list[LabelsFile]
    agreement: dict[str, CalibrationTable]
    emscope_version: str = __version__
    created_at: str


def describe_judge(judge: Judge) -> dict[str, Any]:
    """Identity, prompt hash, request parameters and ``info`` (e.g. held-out figures) of a judge."""
    inner = getattr(judge, "inner", judge)
    params = getattr(inner, "request_params", None)
    info = getattr(inner, "info", None)
    return {
        "identity": judge.identity,
        "prompt_hash": getattr(inner, "prompt_hash", None),
        "params": params() if callable(params) else None,
        "info": info() if callable(info) else None,
    }


def fit_map(judge_scores: ArrayLike, reference_scores: ArrayLike, method: Method) -> ScoreMap:
    """The monotone map of ``method`` over rows where both scores are present."""
    from sklearn.isotonic import IsotonicRegression

    x = np.asarray(judge_scores, dtype=np.float64)
    y = np.asarray(reference_scores, dtype=np.float64)
    both = ~np.isnan(x) & ~np.isnan(y)
    x, y = x[both], y[both]
    if x.size < 2 or np.ptp(x) == 0:
        raise InputError(f"cannot fit a bridge on {x.size} scored rows with one judge score")
    if method == "isotonic-equipercentile":
        grid = np.linspace(0.0, 1.0, QUANTILES)
        x, y = np.quantile(x, grid), np.quantile(y, grid)
    model = IsotonicRegression(y_min=0.0, y_max=100.0, out_of_bounds="clip").fit(x, y)
    return ScoreMap(
        x=[float(v) for v in model.X_thresholds_], y=[float(v) for v in model.y_thresholds_]
    )


def bridge_frame(
    frame: pd.DataFrame, bridge: Bridge, columns: Sequence[str] = ("aligned", "coherent")
) -> pd.DataFrame:
    """A copy of ``frame`` with ``aligned_bridged`` / ``coherent_bridged`` from ``columns``."""
    out = frame.copy()
    for metric, column in zip(METRICS, columns, strict=True):
        scores = pd.to_numeric(out[column], errors="coerce").to_numpy(dtype=np.float64)
        out[BRIDGED[metric]] = bridge.maps[metric].apply(scores)
    return out


def apply_bridge(rows_frame: pd.DataFrame, bridge: Bridge) -> pd.DataFrame:
    """A study's judged rows plus ``aligned_bridged`` and ``coherent_bridged`` columns."""
    return bridge_frame(rows_frame, bridge)


def _files(rows: pd.DataFrame) -> list[LabelsFile]:
    return [
        LabelsFile(
            source=str(source),
            path=str(group["path"].iloc[0]),
            sha256=sha256_file(group["path"].iloc[0]),
            n_rows=len(group),
        )
        for source, group in rows.groupby("source", sort=True)
    ]


def fit_bridge(
    scored: pd.DataFrame,
    held_out: Sequence[str],
    *,
    judge: Judge | None = None,
    judge_identity: str | None = None,
    policy: str = "em",
    method: Method = "isotonic-equipercentile",
) -> Bridge:
    """Fit on the scored rows (``score_labels``) whose ``source`` is not in ``held_out``.

    Agreement is measured raw and bridged on both sides; the held-out figures are the honest ones.
    """
    identity = judge.identity if judge is not None else judge_identity
    if identity is None:
        raise ValueError("pass the judge or its identity")
    unknown = sorted(set(held_out) - set(scored["source"]))
    if unknown:
        raise InputError(f"held-out file(s) not among the labels: {', '.join(unknown)}")
    is_held = scored["source"].isin(list(held_out))
    fit_rows, held_rows = scored[~is_held], scored[is_held]
    if fit_rows.empty or held_rows.empty:
        raise InputError("a bridge needs labels files to fit on and labels files to hold out")
    maps = {
        metric: fit_map(fit_rows[f"judge_{metric}"], fit_rows[metric], method) for metric in METRICS
    }
    draft = Bridge(
        method=method,
        policy=policy,
        judge=identity,
        judge_fingerprint=describe_judge(judge) if judge is not None else {"identity": identity},
        maps=maps,
        fitted_on=_files(fit_rows),
        held_out=_files(held_rows),
        agreement={},
        created_at=datetime.now(UTC).isoformat(),
    )
    bridged_columns = list(BRIDGED.values())
    agreement = {}
    for side, rows in (("fitted", fit_rows), ("held_out", held_rows)):
        bridged = bridge_frame(rows, draft, ("judge_aligned", "judge_coherent"))
        for kind, columns in (("raw", ["judge_aligned", "judge_coherent"]), ("bridged", None)):
            agreement[f"{side}_{kind}"] = calibration_table(
                bridged,
                judge=identity if kind == "raw" else f"{identity} (bridged)",
                policy=policy,
                columns=columns or bridged_columns,
            )
    return draft.model_copy(update={"agreement": agreement})


def write_bridge(bridge: Bridge, path: str | Path) -> Path:
    """Write the artifact as indented JSON."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(bridge.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def load_bridge(path: str | Path) -> Bridge:
    """Read a bridge artifact; a file that is not one is an InputError naming it."""
    path = Path(path)
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputError(f"cannot read the bridge: {exc.strerror}", file=path) from exc
    except json.JSONDecodeError as exc:
        raise InputError(f"a bridge is JSON: {exc.msg}", file=path, line=exc.lineno) from exc
    if not isinstance(raw, dict) or raw.get("format") != BRIDGE_FORMAT:
        raise InputError(f"not an {BRIDGE_FORMAT} file", file=path)
    if raw.get("version") != BRIDGE_VERSION:
        raise InputError(
            f"bridge version {raw.get('version')!r}; this emscope reads {BRIDGE_VERSION}", file=path
        )
    try:
        return Bridge.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise InputError(first["msg"], file=path, field=field) from exc


def check_judge(bridge: Bridge, identity: str | None, path: str | Path | None = None) -> None:
    """A bridge fitted for another judge is an error naming both identities."""
    if bridge.judge != identity:
        raise InputError(
            f"this bridge was fitted for judge {bridge.judge!r}, but the scores come from "
            f"judge {identity!r}; fit a bridge for that judge with `emscope judge calibrate "
            "--fit`",
            file=path,
            field="judge.calibration",
        )
