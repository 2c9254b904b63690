"""Cross-domain transfer: does domain A's misalignment direction steer domain B's model?

Two views: a behavioural matrix (each direction applied to each target model at one layer and
scale, judged for misalignment and coherence) and a geometric one (cosine similarity between
the domains' directions, per layer).

>>> loaders = {"medical": lambda: LocalSampler(med_ref), "base": lambda: LocalSampler(base_ref)}
>>> transfer_matrix({"medical": d_med, "code": d_code}, loaders, judge, prompts,
...                 layer=12, scale=8.0, out_dir="runs/transfer", params=params)  # doctest: +SKIP
"""

from __future__ import annotations

import gc
import re
from collections.abc import Callable, Mapping
from pathlib import Path

import pandas as pd
import torch

from emscope.analyses.directions import Direction
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
    scale: float,
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
    """
    if not directions:
        raise InputError("no directions to transfer", field="directions")
    _check_names(list(directions), "directions")
    _check_names(list(targets), "targets")
    out = Path(out_dir)
    claim_output_dir(
        out,
        "steering_transfer",
        {
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
        },
    )
    frames: list[pd.DataFrame] = []
    for target_name, load in targets.items():
        sampler = load()
        conditions: dict[str, tuple[Intervention, Direction | None]] = {
            UNSTEERED: (Intervention("none"), None),
            **{name: (Intervention("steer", (layer,), scale), d) for name, d in directions.items()},
        }
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
    return summary.assign(layer=layer, scale=scale)


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
