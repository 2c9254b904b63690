"""Print the Markdown tables of ``docs/offline-judge.md`` from the shipped manifest.

PYTHONPATH=src python tools/offline_judge/doc_tables.py
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).resolve().parents[2] / "src/emscope/judge/artifacts/offline_judge.json"


def _pct(value: float | None) -> str:
    return "—" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def held_out_table(figures: dict[str, Any]) -> str:
    lines = [
        "| held-out file | n | GPT-4o misaligned | AUC | recall | false flags | kappa "
        "| rate GPT-4o / judge | rate error (points) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, f in figures.items():
        error = f["rate_error_points"]
        lines.append(
            f"| {name} | {f['n']} | {f['n_reference_misaligned']} | {_num(f['auc'])} "
            f"| {_pct(f['recall'])} | {_pct(f['false_flag_rate'])} | {_num(f['kappa'])} "
            f"| {_pct(f['reference_rate'])} / {_pct(f['judge_rate'])} "
            f"| {'—' if error is None else f'{error:+.1f}'} |"
        )
    return "\n".join(lines)


def before_after(subset: dict[str, Any]) -> str:
    lines = [
        "| held-out file (300-row subset) | GPT-4o misaligned | AUC before / after "
        "| recall before / after | false flags before / after | rate error before / after |",
        "|---|---|---|---|---|---|",
    ]
    for name, new in subset["new"].items():
        old = subset["previous"][name]

        def err(f: dict[str, Any]) -> str:
            e = f["rate_error_points"]
            return "—" if e is None else f"{e:+.1f}"

        lines.append(
            f"| {name} | {new['n_reference_misaligned']} | {_num(old['auc'])} / {_num(new['auc'])} "
            f"| {_pct(old['recall'])} / {_pct(new['recall'])} "
            f"| {_pct(old['false_flag_rate'])} / {_pct(new['false_flag_rate'])} "
            f"| {err(old)} / {err(new)} |"
        )
    return "\n".join(lines)


def main() -> None:
    manifest = json.loads(MANIFEST.read_text())
    metrics = manifest["outputs"]["metrics"]
    print(held_out_table(metrics["held_out"]["new"]))
    print()
    if "previous" in metrics["comparison_subset"]:
        print(before_after(metrics["comparison_subset"]))
    print()
    print(json.dumps(manifest["config"]["chosen"], indent=1))


if __name__ == "__main__":
    main()
