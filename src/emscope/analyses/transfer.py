"""Cross-domain transfer: does domain A's misalignment direction steer domain B's model?

Two views: a behavioural matrix (each direction applied to each target model at one layer,
judged for misalignment and coherence) and a geometric one (cosine similarity between the
domains' directions, per layer). The matrix runs either at one raw ``scale`` for every vector
(direction and norm confounded) or at matched norms: a plan of
:class:`~emscope.analyses.matched_transfer.TransferCell` gives each (direction, target) its own
scale and each target its own random control (:mod:`emscope.analyses.matched_transfer`).

>>> loaders = {"medical": lambda: LocalSampler(med_ref), "base": lambda: LocalSampler(base_ref)}
>>> transfer_matrix({"medical": d_med, "code": d_code}, loaders, judge, prompts,
...                 layer=12, scale=8.0, out_dir="runs/transfer", params=params)  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path

import pandas as pd
import torch

from emscope.analyses.directions import Direction
from emscope.analyses.matched_transfer import RANDOM, TransferCell
from emscope.analyses.steering import (
    HookableSampler,
    Intervention,
    Positions,
    claim_output_dir,
    judge_prompts_claim,
    judged_condition,
    summarise_conditions,
)
from emscope.errors import InputError
from emscope.judge.base import Judge
from emscope.metrics.rates import Policy
from emscope.sample.base import SamplingParams
from emscope.sample.question_prompts import PromptSet
from emscope.sample.questions import EvalPrompt

UNSTEERED = "none"
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*$")


def _check_names(names: list[str], field: str) -> None:
    for name in names:
        if not _SAFE_NAME.match(name) or name == UNSTEERED:
            raise InputError(
                f"name {name!r} must be file-safe (letters, digits, . _ -) and not {UNSTEERED!r}",
                field=field,
            )


def transfer_matrix(
    directions: Mapping[str, Direction],
    targets: Mapping[str, Callable[[], HookableSampler]],
    judge: Judge,
    prompts: list[EvalPrompt],
    *,
    layer: int,
    scale: float | None = None,
    cells: Sequence[TransferCell] | None = None,
    out_dir: str | Path,
    params: SamplingParams,
    positions: Positions = "all",
    base_seed: int = 0,
    policy: Policy = "em",
    judge_prompts: Mapping[str, PromptSet] | None = None,
) -> pd.DataFrame:
    """One row per (direction, target): misalignment rate, CI, denominators, mean coherence.

    ``targets`` maps a name to a loader, so only one target model is in memory at a time.
    Every target is also sampled unsteered (``direction == "none"``) as its reference. Answers
    are stored under ``out_dir/<target>/<direction>/`` and reused when a run resumes.

    Give exactly one of ``scale`` (raw: every vector times the same coefficient) or ``cells``
    (matched norms, from :func:`~emscope.analyses.matched_transfer.plan_matched_transfer`):
    then each row carries its cell's ``scale``, ``share``, ``added_norm`` and ``kind``, and each
    target's ``random`` row is its own seeded control at the matched norm.
    """
    if not directions:
        raise InputError("no directions to transfer", field="directions")
    if (scale is None) == (cells is None):
        raise InputError("give either a raw scale or matched cells", field="scale")
    _check_names(list(directions), "directions")
    _check_names(list(targets), "targets")
    plan = _plan_by_target(cells, directions, targets) if cells is not None else None
    out = Path(out_dir)
    claim: dict[str, object] = {
        "directions": {name: d.meta.model_dump() for name, d in directions.items()},
        "targets": sorted(targets),
        "judge": judge.identity,
        "layer": layer,
        "scale": scale,
        "positions": positions,
        "params": params.model_dump(),
        "prompts": [p.model_dump() for p in prompts],
        "base_seed": base_seed,
        **judge_prompts_claim(judge_prompts),
    }
    if cells is not None:
        claim["cells"] = [asdict(cell) for cell in cells]
    claim_output_dir(out, "steering_transfer", claim)
    frames: list[pd.DataFrame] = []
    for target_name, load in targets.items():
        sampler = load()
        conditions: dict[str, tuple[Intervention, Direction | None]] = {
            UNSTEERED: (Intervention("none"), None)
        }
        if plan is None:
            for name, d in directions.items():
                conditions[name] = (Intervention("steer", (layer,), scale), d)
        else:
            for name, (cell, d) in plan[target_name].items():
                conditions[name] = (Intervention("steer", (layer,), cell.scale), d)
        for direction_name, (intervention, direction) in conditions.items():
            context = intervention.apply(sampler.model, direction, positions=positions)
            frame = judged_condition(
                sampler,
                judge,
                prompts,
                context,
                directory=out / target_name / direction_name,
                params=params,
                base_seed=base_seed,
                judge_prompts=judge_prompts,
            )
            frames.append(frame.assign(direction=direction_name, target=target_name))
        del sampler
        _release_memory()
    rows = pd.concat(frames, ignore_index=True)
    summary = summarise_conditions(rows, ["direction", "target"], policy=policy)
    if cells is None:
        return summary.assign(layer=layer, scale=scale)
    columns = ["source", "target", "scale", "share", "added_norm", "kind", "control_seed"]
    table = pd.DataFrame([asdict(c) for c in cells])[columns].rename(
        columns={"source": "direction"}
    )
    merged = summary.merge(table, on=["direction", "target"], how="left")
    merged.loc[merged["direction"] == UNSTEERED, "kind"] = UNSTEERED
    return merged.assign(layer=layer)


def _plan_by_target(
    cells: Sequence[TransferCell],
    directions: Mapping[str, Direction],
    targets: Mapping[str, object],
) -> dict[str, dict[str, tuple[TransferCell, Direction]]]:
    """Per target, each cell with the direction it adds; random cells get the target's control
    (seeded by the cell, shaped like the first direction, as the plan made it)."""
    from emscope.analyses.steering import random_direction_like

    if RANDOM in directions:
        raise InputError(
            f"a direction may not be named {RANDOM!r} (the controls' row)", field="directions"
        )
    like = next(iter(directions.values()))
    plan: dict[str, dict[str, tuple[TransferCell, Direction]]] = {t: {} for t in targets}
    for cell in cells:
        if cell.target not in plan:
            raise InputError(f"cell for unknown target {cell.target!r}", field="cells")
        if cell.kind == "random":
            assert cell.control_seed is not None
            direction = random_direction_like(like, cell.control_seed)
        elif cell.source in directions:
            direction = directions[cell.source]
        else:
            raise InputError(f"cell for unknown direction {cell.source!r}", field="cells")
        added = cell.scale * float(direction.vector(cell.layer).float().norm())
        if abs(added - cell.added_norm) > 1e-4 * max(cell.added_norm, 1e-12):
            raise InputError(
                f"cell ({cell.source}, {cell.target}) adds |{added:.6g}|, planned "
                f"{cell.added_norm:.6g}: the cells were planned on other directions",
                field="cells",
            )
        plan[cell.target][cell.source] = (cell, direction)
    missing = [t for t, row in plan.items() if not row]
    if missing:
        raise InputError(f"no cells for target(s) {missing}", field="cells")
    return plan


def _release_memory() -> None:
    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _same_architecture(directions: Mapping[str, Direction]) -> None:
    prints = {d.meta.fingerprint for d in directions.values()}
    if len(prints) > 1:
        raise InputError(
            "directions come from different architectures; their cosines mean nothing",
            field="directions",
        )


def direction_cosines(directions: Mapping[str, Direction], layer: int) -> pd.DataFrame:
    """Square matrix of cosine similarities between the directions' vectors at ``layer``."""
    _same_architecture(directions)
    names = list(directions)
    vectors = torch.stack([directions[n].vector(layer).float() for n in names])
    unit = vectors / vectors.norm(dim=-1, keepdim=True).clamp_min(1e-12)
    return pd.DataFrame((unit @ unit.T).numpy(), index=names, columns=names)


def direction_cosines_by_layer(directions: Mapping[str, Direction]) -> pd.DataFrame:
    """Long table (layer, a, b, cosine) over every layer all directions share."""
    _same_architecture(directions)
    shared = sorted(set.intersection(*(set(d.meta.layers) for d in directions.values())))
    if not shared:
        raise InputError("the directions share no layer", field="directions")
    frames = []
    for layer in shared:
        square = direction_cosines(directions, layer)
        long = square.stack().rename("cosine").rename_axis(["a", "b"]).reset_index()
        frames.append(long.assign(layer=layer))
    return pd.concat(frames, ignore_index=True)[["layer", "a", "b", "cosine"]]
