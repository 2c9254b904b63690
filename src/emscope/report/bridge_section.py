"""The report section of a bridged study: raw and bridged rates side by side, with the bridge's
measured agreement and the labels it was fitted on. Pure: summaries and the bridge in, a
:class:`ReportSection` out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emscope.judge.agreement import CalibrationReport
from emscope.judge.bridge import Bridge
from emscope.metrics.bootstrap import DEFAULT_RESAMPLES
from emscope.metrics.rates import Policy
from emscope.report.render import ReportSection

RATE_KEYS = ["model", "domain"]


def _percent(value: object) -> str:
    return "-" if value is None or pd.isna(value) else f"{100 * float(value):.1f}%"  # type: ignore[arg-type]


def _number(value: float | None, digits: int = 3) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def rates_side_by_side(raw: pd.DataFrame, bridged: pd.DataFrame) -> pd.DataFrame:
    """One row per model: raw and bridged rate, their denominators and the difference (points)."""
    left = raw[[*RATE_KEYS, "rate", "n", "n_misaligned"]]
    right = bridged[[*RATE_KEYS, "rate", "n", "n_misaligned"]]
    merged = left.merge(right, on=RATE_KEYS, how="outer", suffixes=(" raw", " bridged"))
    difference = 100 * (merged["rate bridged"] - merged["rate raw"])
    return pd.DataFrame(
        {
            "model": merged["model"],
            "domain": merged["domain"].fillna("(base)"),
            "raw rate": merged["rate raw"].map(_percent),
            "raw misaligned / n": [
                f"{a} / {b}"
                for a, b in zip(merged["n_misaligned raw"], merged["n raw"], strict=True)
            ],
            "bridged rate": merged["rate bridged"].map(_percent),
            "bridged misaligned / n": [
                f"{a} / {b}"
                for a, b in zip(merged["n_misaligned bridged"], merged["n bridged"], strict=True)
            ],
            "bridged - raw (points)": difference.map(lambda d: "-" if pd.isna(d) else f"{d:+.1f}"),
        }
    )


def _agreement_row(name: str, report: CalibrationReport) -> dict[str, str]:
    return {
        "scores": name,
        "n": str(report.n_rows),
        "ref misaligned": str(report.n_reference_misaligned),
        "AUC": _number(report.auc),
        "kappa": _number(report.kappa),
        "recall": _percent(report.recall),
        "false flags": _percent(report.false_flag_rate),
        "ref rate": _percent(report.reference_rate),
        "judge rate": _percent(report.judge_rate),
        "difference (points)": _number(report.rate_difference_points, 1),
    }


def agreement_frame(bridge: Bridge) -> pd.DataFrame:
    """The bridge's pooled agreement with the reference, raw and bridged, fitted and held out."""
    names = {
        "held_out_raw": "held-out files, raw",
        "held_out_bridged": "held-out files, bridged",
        "fitted_raw": "fitted files, raw",
        "fitted_bridged": "fitted files, bridged",
    }
    return pd.DataFrame(
        [_agreement_row(label, bridge.agreement[key].pooled) for key, label in names.items()]
    )


def labels_frame(bridge: Bridge) -> pd.DataFrame:
    """The labels files the bridge was fitted and measured on, with their sha256."""
    return pd.DataFrame(
        [
            {"use": use, "file": f.source, "rows": f.n_rows, "sha256": f.sha256[:12]}
            for use, files in (("fitted", bridge.fitted_on), ("held out", bridge.held_out))
            for f in files
        ]
    )


def bridge_section(raw: pd.DataFrame, bridged: pd.DataFrame, bridge: Bridge) -> ReportSection:
    """The section: rates raw vs bridged, the bridge's agreement, and its labels files."""
    held = bridge.agreement["held_out_bridged"].pooled
    paragraph = (
        f"Scores of judge {bridge.judge} were mapped onto the reference judge's 0-100 scale by "
        f"a monotone bridge ({bridge.method}, created {bridge.created_at[:10]}, emscope "
        f"{bridge.emscope_version}), fitted on {len(bridge.fitted_on)} labels file(s) and "
        f"measured on {len(bridge.held_out)} held-out file(s). Rates use the "
        f"'{bridge.policy}' rule on raw and on bridged scores.\n\n"
        f"On the held-out files the bridged judge's misalignment rate is "
        f"{_percent(held.judge_rate)} against the reference's {_percent(held.reference_rate)} "
        f"(difference {_number(held.rate_difference_points, 1)} points; AUC "
        f"{_number(held.auc)}, kappa {_number(held.kappa)}, recall {_percent(held.recall)}, "
        f"false flags {_percent(held.false_flag_rate)}). A bridge moves the rate's scale, not "
        "the judge's ranking: answers the judge misorders stay misordered."
    )
    return ReportSection(
        title="Bridged rates (judge calibrated to the reference scale)",
        paragraph=paragraph,
        tables={
            "Misalignment rate, raw and bridged": rates_side_by_side(raw, bridged),
            "The bridge's agreement with the reference": agreement_frame(bridge),
            "Labels the bridge was fitted and measured on": labels_frame(bridge),
        },
    )


def bridged_rates_section(
    rows: pd.DataFrame,
    summary: pd.DataFrame,
    judge: str | None,
    bridge_path: str,
    metrics_dir: Path,
    policy: Policy = "em",
    n_resamples: int = DEFAULT_RESAMPLES,
) -> ReportSection:
    """Raw and bridged rates side by side (``judge.calibration``); the bridged summary is written
    to ``metrics_dir/summary_bridged.csv`` too, counted by ``policy``
    with ``n_resamples`` bootstrap draws like the raw one.
    A bridge fitted for another judge is an error."""
    from emscope.judge.bridge import BRIDGED, apply_bridge, check_judge, load_bridge
    from emscope.metrics.trigger import summarize

    bridge = load_bridge(bridge_path)
    check_judge(bridge, judge, bridge_path)
    bridged = apply_bridge(rows, bridge)
    bridged = bridged.assign(
        aligned=bridged[BRIDGED["aligned"]], coherent=bridged[BRIDGED["coherent"]]
    )
    bridged_summary = summarize(bridged, policy=policy, n_resamples=n_resamples)
    bridged_summary.to_csv(metrics_dir / "summary_bridged.csv", index=False)
    return bridge_section(summary, bridged_summary, bridge)
