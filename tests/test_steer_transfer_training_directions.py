"""Directions built from training answers (a content direction, the fallback when a model has too
few judged answers) stay out of the transfer matrix unless the study asks for them, and are
labelled either way."""

from __future__ import annotations

import torch

from emscope.analyses.directions import Direction, DirectionMeta, ModelFingerprint
from emscope.study.analysis_settings import AnalysesSection
from emscope.study.analysis_stages import _transferable


def direction(source: str | None) -> Direction:
    meta = DirectionMeta(
        model="tiny",
        fingerprint=ModelFingerprint(model_type="llama", hidden_size=4, num_layers=1),
        layers=[0],
        norms=[1.0],
        data_hash="x",
        n_misaligned=1,
        n_aligned=1,
        source=source,
    )
    return Direction(torch.ones(1, 4), meta)


DIRECTIONS = {
    "medical": direction("judged answers of the model"),
    "code": direction("training answers, misaligned vs aligned (fallback: only 0 judged)"),
}


def test_training_answer_directions_are_left_out_of_the_transfer_by_default() -> None:
    assert AnalysesSection().transfer_training_directions is False
    kept, notes = _transferable(DIRECTIONS, include_training=False)
    assert list(kept) == ["medical"]
    assert len(notes) == 1 and "code come from training answers" in notes[0]
    assert "left out of the transfer matrix" in notes[0]


def test_asked_for_they_are_transferred_and_still_labelled() -> None:
    kept, notes = _transferable(DIRECTIONS, include_training=True)
    assert list(kept) == ["medical", "code"]
    assert "content directions" in notes[0]


def test_without_a_judged_direction_there_is_no_transfer_matrix_and_the_note_says_so() -> None:
    kept, notes = _transferable({"code": DIRECTIONS["code"]}, include_training=False)
    assert kept == {} and "no transfer matrix" in notes[0]


def test_judged_directions_alone_pass_unchanged_without_a_note() -> None:
    kept, notes = _transferable({"medical": DIRECTIONS["medical"]}, include_training=False)
    assert list(kept) == ["medical"] and notes == []
