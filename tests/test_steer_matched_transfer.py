"""Transfer at matched norms: every added vector is a share of the target's activation norm."""

from __future__ import annotations

import pytest
import torch

from emscope.analyses.directions import Direction, DirectionMeta, ModelFingerprint
from emscope.analyses.matched_transfer import (
    activation_norm,
    control_seed,
    direction_kind,
    matched_scale,
    plan_matched_transfer,
    target_control,
)
from emscope.analyses.steering import random_direction_like
from emscope.errors import InputError

TINY = ModelFingerprint(model_type="llama", hidden_size=16, num_layers=2)


def _direction(norm: float, *, source: str | None = None, activation: float = 10.0) -> Direction:
    vectors = torch.zeros(2, 16)
    vectors[:, 0] = norm
    meta = DirectionMeta(
        model="tiny",
        fingerprint=TINY,
        layers=[0, 1],
        norms=[norm, norm],
        activation_norms=[activation, 2 * activation],
        data_hash=f"h{norm}",
        n_misaligned=2,
        n_aligned=2,
        source=source,
    )
    return Direction(vectors=vectors, meta=meta)


def test_matched_scale_makes_the_added_vector_a_share_of_the_target_norm() -> None:
    assert matched_scale(2.0, 40.0, 0.25) == pytest.approx(5.0)  # 5 * 2 = 0.25 * 40
    with pytest.raises(InputError, match="share"):
        matched_scale(2.0, 40.0, 0.0)
    with pytest.raises(InputError, match="norms"):
        matched_scale(0.0, 40.0, 0.1)


def test_directions_of_different_norms_push_each_target_equally_hard() -> None:
    directions = {"code": _direction(1.0), "maths": _direction(8.0)}
    targets = {"code": 10.0, "maths": 30.0}
    cells = plan_matched_transfer(directions, targets, layer=0, share=0.5)
    for cell in cells:
        vector = directions[cell.source].vector(0) if cell.source in directions else None
        if vector is not None:
            assert cell.scale * float(vector.norm()) == pytest.approx(0.5 * targets[cell.target])
        assert cell.added_norm == pytest.approx(0.5 * targets[cell.target])
    scales = {(c.source, c.target): c.scale for c in cells}
    assert scales[("code", "code")] == pytest.approx(8 * scales[("maths", "code")])


def test_each_target_gets_its_own_random_control_at_the_same_norm() -> None:
    directions = {"code": _direction(1.0), "maths": _direction(8.0)}
    targets = {"code": 10.0, "maths": 30.0, "legal": 20.0}
    cells = plan_matched_transfer(directions, targets, layer=1, share=0.1, seed=3)
    controls = [c for c in cells if c.kind == "random"]
    assert [c.target for c in controls] == list(targets)
    assert len({c.control_seed for c in controls}) == len(targets)
    for cell in controls:
        control = target_control(directions["code"], cell.target, 3)
        assert control.meta.operation == "random_like"
        added = cell.scale * float(control.vector(1).norm())
        assert added == pytest.approx(0.1 * targets[cell.target])
        assert "random control for" in cell.label
    assert control_seed(3, "code") != control_seed(4, "code")


def test_training_answer_directions_stay_out_unless_asked_and_are_labelled() -> None:
    fallback = "training answers, misaligned vs aligned (fallback: only 1 / 0 judged answers)"
    directions = {"code": _direction(1.0), "legal": _direction(2.0, source=fallback)}
    assert direction_kind(directions["legal"]) == "training_answers"
    assert direction_kind(directions["code"]) == "judged"
    assert direction_kind(random_direction_like(directions["code"], 0)) == "random"
    plain = plan_matched_transfer(directions, {"code": 10.0}, layer=0, share=0.2)
    assert {c.source for c in plain} == {"code", "random"}
    asked = plan_matched_transfer(
        directions, {"code": 10.0}, layer=0, share=0.2, include_training_answers=True
    )
    (legal,) = [c for c in asked if c.source == "legal"]
    assert "training answers" in legal.label
    with pytest.raises(InputError, match="judged answers"):
        plan_matched_transfer({"legal": directions["legal"]}, {"code": 1.0}, layer=0, share=0.2)


def test_activation_norm_reads_the_stored_per_layer_norm_or_says_it_is_missing() -> None:
    direction = _direction(1.0, activation=7.0)
    assert activation_norm(direction, 0) == 7.0 and activation_norm(direction, 1) == 14.0
    bare = Direction(
        direction.vectors, direction.meta.model_copy(update={"activation_norms": None})
    )
    with pytest.raises(InputError, match="activation norms"):
        activation_norm(bare, 0)
    with pytest.raises(InputError, match="layers"):
        activation_norm(direction, 5)
