"""The report section of steering: one direction per fine-tuned model, the sweep on one model,
the transfer matrix across models and the directions' cosines (protocol §9)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from emscope.analyses.directions import Direction
from emscope.report.sections import SectionFiles, SectionSpec
from emscope.report.tables import MISSING, fixed, percent_with_ci


@dataclass(frozen=True)
class DirectionInfo:
    """A model's direction: where its classes came from (or why it has none), their sizes."""

    name: str
    source: str
    n_misaligned: int | None = None
    n_aligned: int | None = None


@dataclass(frozen=True)
class SweepFiles:
    summary: Path
    model: str


@dataclass(frozen=True)
class TransferFiles:
    matrix: Path
    cosines: Path
    layer: int
    scale: float | None  # raw mode: one coefficient on every raw vector
    share: float | None = None  # matched mode: added norm / target activation norm

    @property
    def mode(self) -> str:
        """What the report's titles say about how the matrix was steered."""
        if self.share is not None:
            return f"matched norms: |added| = {self.share:g} x target activation norm"
        return f"raw vectors at scale {self.scale:g} (norms differ by direction)"


def steering_section(
    root: Path,
    made: list[DirectionInfo],
    directions: dict[str, Direction],
    sweep: SweepFiles | None,
    transfer: TransferFiles | None,
    paragraph: str,
    scope: str = "",
) -> SectionSpec:
    """Write the section's tables and figures under ``root/steering/report`` (``<scope>/report``
    for one family of several); return its spec."""
    from emscope.report.steer_charts import (
        cosine_heatmap_png,
        sweep_chart_png,
        transfer_heatmap_png,
    )

    files = SectionFiles(root, root / "steering" / scope / "report", prefix=scope)
    layer = transfer.layer if transfer else None
    files.table("Directions", directions_table(made, directions, layer), "directions.csv")
    if sweep is not None:
        summary = pd.read_csv(sweep.summary, dtype={"layers": str})
        summary["layers"] = summary["layers"].fillna("")
        keys = ["condition", "kind", "layers", "scale"]
        files.table(f"Sweep on {sweep.model}", rates_table(summary, keys), "sweep.csv")
        files.figure(
            "steer_sweep.png", f"Steering sweep on {sweep.model}", sweep_chart_png(summary)
        )
    if transfer is not None:
        matrix = pd.read_csv(transfer.matrix)
        cells = matrix.assign(
            cell=[
                percent_with_ci(r.misalignment_rate, r.ci_low, r.ci_high)
                for r in matrix.itertuples(index=False)
            ]
        )
        if transfer.share is not None:
            files.table(
                f"Transfer cells (block {layer}; {transfer.mode}; 'random' is each target's own "
                "seeded control at the same norm)",
                cells_table(matrix),
                "transfer_cells.csv",
            )
        files.table(
            f"Transfer matrix (misalignment rate [95% CI]; block {layer}; {transfer.mode}; "
            "rows: direction, columns: target model)",
            cells.pivot(index="direction", columns="target", values="cell").reset_index(),
            "transfer.csv",
        )
        files.figure(
            "steer_transfer.png",
            "Direction transfer: misalignment rate",
            transfer_heatmap_png(matrix),
        )
        coherence = matrix.assign(cell=[fixed(v, 1) for v in matrix["mean_coherence"]])
        files.table(
            f"Transfer matrix (mean coherence 0-100; block {layer}; {transfer.mode})",
            coherence.pivot(index="direction", columns="target", values="cell").reset_index(),
            "transfer_coherence.csv",
        )
        files.figure(
            "steer_transfer_coherence.png",
            "Direction transfer: mean coherence",
            transfer_heatmap_png(matrix, value="mean_coherence"),
        )
        cosines = pd.read_csv(transfer.cosines, index_col=0)
        files.table(
            f"Direction cosines (block {layer})",
            cosines.map(lambda v: fixed(v, 3)).reset_index(names="direction"),
            "cosines.csv",
        )
        files.figure(
            "steer_cosines.png",
            "Cosine similarity of the domains' directions",
            cosine_heatmap_png(cosines, layer=layer),
        )
    return files.spec("Steering and transfer", paragraph)


def cells_table(matrix: pd.DataFrame) -> pd.DataFrame:
    """Per steered cell of a matched-norm matrix: the coefficient on the raw vector, the added
    norm, the target's activation norm and where that norm came from."""
    steered = matrix[matrix["kind"] != "none"]
    return pd.DataFrame.from_records(
        [
            {
                "direction": row["direction"],
                "target": row["target"],
                "kind": row["kind"]
                + ("" if pd.isna(row["control_seed"]) else f" (seed {int(row['control_seed'])})"),
                "scale on raw vector": fixed(row["scale"], 3),
                "|added|": fixed(row["added_norm"], 3),
                "target activation norm": fixed(row["target_norm"], 3),
                "|added| / target norm": fixed(row["added_norm"] / row["target_norm"], 3),
                "target norm from": row["target_norm_source"],
            }
            for _, row in steered.iterrows()
        ]
    )


def directions_table(
    made: list[DirectionInfo], directions: dict[str, Direction], layer: int | None
) -> pd.DataFrame:
    records = []
    for info in made:
        direction = directions.get(info.name)
        norm = activation = None
        if direction is not None and layer is not None:
            norm = direction.vector(layer).norm().item()
            norms = direction.meta.activation_norms
            activation = norms[direction.meta.layers.index(layer)] if norms else None
        records.append(
            {
                "model": info.name,
                "source": info.source,
                "misaligned answers": MISSING if info.n_misaligned is None else info.n_misaligned,
                "aligned answers": MISSING if info.n_aligned is None else info.n_aligned,
                f"|v| at block {layer}": fixed(norm),
                f"answer activation norm at block {layer}": fixed(activation),
                "|v| / activation": fixed(norm / activation if norm and activation else None),
            }
        )
    return pd.DataFrame.from_records(records)


def rates_table(summary: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame.from_records(
        [
            {
                **{k: ("" if pd.isna(row[k]) else row[k]) for k in keys},
                "misalignment rate [95% CI]": percent_with_ci(
                    row["misalignment_rate"], row["ci_low"], row["ci_high"]
                ),
                "used / answers": f"{row['n_used']} / {row['n_rows']}",
                "mean coherence": fixed(row["mean_coherence"], 1),
            }
            for _, row in summary.iterrows()
        ]
    )
