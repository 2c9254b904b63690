"""Transfer at matched norms: each direction scaled to a share of the target's activation norm.

Raw directions differ in norm by domain, so applying them at one scale confounds *which*
direction with *how hard it pushes*. Here every vector added to a target model has the same
norm, ``share x`` that target's activation norm at the layer (the mean norm of its answer-mean
block output, stored with the target's own direction as ``activation_norms``), so only the
direction varies along a row. Each target also gets its own random control of that norm
(seeded per target), not one control for the whole sweep. Directions built from training
answers (the fallback when a model has too few judged answers: a content direction, not a
behavioural one) stay out of the plan unless asked for, and are always labelled.

This module plans; :func:`emscope.analyses.transfer.transfer_matrix` runs a plan's cells.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from emscope.analyses.directions import Direction
from emscope.analyses.steering import random_direction_like
from emscope.errors import InputError

DirectionKind = Literal["judged", "training_answers", "random"]
RANDOM = "random"


def direction_kind(direction: Direction) -> DirectionKind:
    """Where a direction's answers came from: the model's judged answers, training answers
    (the study's fallback) or a random control."""
    if direction.meta.operation == "random_like":
        return "random"
    if (direction.meta.source or "").startswith("training answers"):
        return "training_answers"
    return "judged"


def activation_norm(direction: Direction, layer: int) -> float:
    """The stored activation norm of ``direction``'s model at block ``layer``."""
    norms = direction.meta.activation_norms
    if norms is None:
        raise InputError(
            "the direction stores no activation norms; rebuild it to steer at matched norms",
            field="activation_norms",
        )
    direction.vector(layer)  # names the layers it has when ``layer`` is missing
    return float(norms[direction.meta.layers.index(layer)])


def target_norms(
    directions: Mapping[str, Direction], targets: list[str], layer: int
) -> tuple[dict[str, float], dict[str, str]]:
    """Each target's answer-activation norm at ``layer`` and where it comes from.

    A target with a direction of its own uses that direction's stored norm (its own model on
    its own answers). A target without one (the base model, a model with too few answers) has
    no stored norm; it gets the mean of the other models' norms, and its source says so (as
    does a target whose direction predates stored norms).
    """
    own = {
        name: activation_norm(d, layer)
        for name, d in directions.items()
        if d.meta.activation_norms is not None
    }
    if not own:
        raise InputError(
            "no direction stores an activation norm: rebuild the directions, or set "
            "analyses.transfer_scale for the raw mode",
            field="activation_norms",
        )
    mean = sum(own.values()) / len(own)
    norms, sources = {}, {}
    for target in targets:
        if target in own:
            kind = direction_kind(directions[target])
            where = "training answers" if kind == "training_answers" else "judged answers"
            norms[target], sources[target] = own[target], f"its own direction ({where})"
        else:
            why = (
                "its direction stores no norm"
                if target in directions
                else "no direction of its own"
            )
            norms[target] = mean
            sources[target] = f"mean of the fine-tuned models' norms ({', '.join(own)}): {why}"
    return norms, sources


def matched_scale(vector_norm: float, target_norm: float, share: float) -> float:
    """The coefficient ``s`` for which ``|s * v| = share * target_norm``."""
    if share <= 0:
        raise InputError(f"share must be positive, got {share}", field="share")
    if vector_norm <= 0 or target_norm <= 0:
        raise InputError(
            f"norms must be positive (vector {vector_norm}, target {target_norm})", field="norms"
        )
    return share * target_norm / vector_norm


@dataclass(frozen=True)
class TransferCell:
    """One (direction, target) pair of the matrix, at a scale that matches the target's norm."""

    source: str  # the direction's domain, or "random" for the target's control
    target: str
    layer: int
    share: float
    scale: float  # coefficient on the raw vector
    added_norm: float  # |scale * v| = share * target activation norm
    kind: DirectionKind
    control_seed: int | None = None

    @property
    def label(self) -> str:
        """What the row shows, with the direction's provenance when it is not judged answers."""
        if self.kind == "random":
            return f"random control for {self.target} (seed {self.control_seed})"
        if self.kind == "training_answers":
            return f"{self.source} (direction from training answers: a content direction)"
        return self.source


def control_seed(seed: int, target: str) -> int:
    """A seed of its own for ``target``'s random control."""
    digest = hashlib.blake2b(f"{seed}:{target}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big")


def target_control(like: Direction, target: str, seed: int) -> Direction:
    """``target``'s random control: Gaussian, per-layer norms of ``like`` (rescaled anyway)."""
    return random_direction_like(like, control_seed(seed, target))


def plan_matched_transfer(
    directions: Mapping[str, Direction],
    target_norms: Mapping[str, float],
    *,
    layer: int,
    share: float,
    seed: int = 0,
    include_training_answers: bool = False,
) -> list[TransferCell]:
    """Cells of the transfer matrix: every eligible direction on every target at ``share`` of
    that target's activation norm, then the target's own random control at the same norm."""
    eligible = {
        name: d
        for name, d in directions.items()
        if direction_kind(d) == "judged"
        or (include_training_answers and direction_kind(d) == "training_answers")
    }
    if not eligible:
        raise InputError(
            "no direction from judged answers to transfer (training-answer directions are left "
            "out unless include_training_answers is set)",
            field="directions",
        )
    cells = []
    for target, norm in target_norms.items():
        added = share * norm
        for name, direction in eligible.items():
            vector_norm = float(direction.vector(layer).float().norm())
            scale = matched_scale(vector_norm, norm, share)
            cells.append(
                TransferCell(name, target, layer, share, scale, added, direction_kind(direction))
            )
        like = next(iter(eligible.values()))
        control = target_control(like, target, seed)
        control_norm = float(control.vector(layer).float().norm())
        cells.append(
            TransferCell(
                RANDOM,
                target,
                layer,
                share,
                matched_scale(control_norm, norm, share),
                added,
                "random",
                control_seed(seed, target),
            )
        )
    return cells
