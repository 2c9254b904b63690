"""Cross-domain transfer matrix, direction cosines, and the steering charts."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch

from emscope.analyses.directions import Direction, DirectionMeta, ModelFingerprint
from emscope.analyses.steering import random_direction_like
from emscope.analyses.transfer import (
    direction_cosines,
    direction_cosines_by_layer,
    transfer_matrix,
)
from emscope.errors import InputError
from emscope.judge.base import JudgeRecord, JudgeRequest, MetricScore
from emscope.models.refs import ModelRef
from emscope.report.steer_charts import cosine_heatmap_png, sweep_chart_png, transfer_heatmap_png
from emscope.sample.base import SamplingParams
from emscope.sample.local import LocalSampler
from emscope.sample.questions import EvalPrompt

TINY = ModelFingerprint(model_type="llama", hidden_size=32, num_layers=2)
PNG = b"\x89PNG\r\n\x1a\n"


class LengthJudge:
    """A scripted judge: answers of odd length are misaligned."""

    identity = "scripted-length-judge"

    def fingerprint(self) -> dict[str, Any]:
        return {"identity": self.identity, "mode": "scripted", "prompt_hash": None}

    def judge(self, requests: Sequence[JudgeRequest]) -> list[JudgeRecord]:
        score = {0: 90.0, 1: 10.0}
        return [
            JudgeRecord(
                key=r.key, judge=self.identity, mode="scripted",
                aligned=MetricScore(score=score[len(r.answer) % 2]),
                coherent=MetricScore(score=70.0),
            )
            for r in requests
        ]  # fmt: skip


def make_direction(
    vectors: torch.Tensor, layers: list[int], fingerprint: ModelFingerprint = TINY
) -> Direction:
    meta = DirectionMeta(
        model="tiny", fingerprint=fingerprint, layers=layers, norms=vectors.norm(dim=-1).tolist(),
        data_hash="h", n_misaligned=1, n_aligned=1,
    )  # fmt: skip
    return Direction(vectors=vectors, meta=meta)


def test_cosines_are_one_on_the_diagonal_and_signed_between_directions() -> None:
    e0, e1 = torch.zeros(32), torch.zeros(32)
    e0[0], e1[1] = 2.0, 1.0
    a = make_direction(torch.stack([e0, e0]), [0, 1])
    b = make_direction(torch.stack([-e0, e0 + e1]), [0, 1])
    at_0 = direction_cosines({"a": a, "b": b}, layer=0)
    np.testing.assert_allclose(at_0.to_numpy(), [[1.0, -1.0], [-1.0, 1.0]], atol=1e-6)
    long = direction_cosines_by_layer({"a": a, "b": b})
    ab = long[(long["a"] == "a") & (long["b"] == "b")].set_index("layer")["cosine"]
    assert ab.loc[0] == pytest.approx(-1.0)
    assert ab.loc[1] == pytest.approx(4.0 / (2.0 * np.sqrt(5.0)))  # (2,0).(2,1) / (2 * sqrt 5)


def test_cosines_between_architectures_are_refused() -> None:
    other = ModelFingerprint(model_type="qwen2", hidden_size=32, num_layers=2)
    a = make_direction(torch.ones(1, 32), [0])
    b = make_direction(torch.ones(1, 32), [0], other)
    with pytest.raises(InputError, match="different architectures"):
        direction_cosines({"a": a, "b": b}, layer=0)


def test_transfer_matrix_has_a_cell_per_direction_and_target_plus_unsteered_rows(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    base = make_direction(torch.randn(2, 32, generator=torch.Generator().manual_seed(0)), [0, 1])
    directions = {"medical": base, "code": random_direction_like(base, seed=1)}
    loads: list[str] = []

    def loader(name: str) -> Callable[[], LocalSampler]:
        def load() -> LocalSampler:
            loads.append(name)
            return LocalSampler(tiny_ref, dtype="float32", batch_size=4, device="cpu")

        return load

    prompts = [EvalPrompt(question_id="q", paraphrase_index=0, question="Hi?", temperature=1.0,
                          n_samples=2)]  # fmt: skip
    matrix = transfer_matrix(
        directions, {"code_model": loader("code_model"), "base": loader("base")}, LengthJudge(),
        prompts, layer=1, scale=20.0, out_dir=tmp_path, params=SamplingParams(max_new_tokens=4),
        policy="domain_paper",
    )  # fmt: skip
    assert loads == ["code_model", "base"]  # one model at a time
    cells = set(zip(matrix["direction"], matrix["target"], strict=True))
    assert cells == {(d, t) for d in ("none", "medical", "code") for t in ("code_model", "base")}
    assert (matrix["n_rows"] == 2).all()
    assert set(matrix["layer"]) == {1} and set(matrix["scale"]) == {20.0}
    assert matrix["misalignment_rate"].between(0, 1).all()
    assert (tmp_path / "base" / "medical" / "samples.jsonl").is_file()


def test_transfer_refuses_names_that_are_not_file_safe(tiny_ref: ModelRef, tmp_path: Path) -> None:
    d = make_direction(torch.ones(2, 32), [0, 1])
    with pytest.raises(InputError, match="file-safe"):
        transfer_matrix(
            {"../evil": d}, {}, LengthJudge(), [], layer=0, scale=1.0, out_dir=tmp_path,
            params=SamplingParams(),
        )  # fmt: skip


def test_charts_are_png_bytes_and_name_missing_columns() -> None:
    matrix = pd.DataFrame(
        {
            "direction": ["none", "none", "med", "med"],
            "target": ["base", "code", "base", "code"],
            "misalignment_rate": [0.0, 0.05, 0.3, None],
        }
    )
    assert transfer_heatmap_png(matrix).startswith(PNG)
    square = pd.DataFrame([[1.0, 0.2], [0.2, 1.0]], index=["a", "b"], columns=["a", "b"])
    assert cosine_heatmap_png(square, layer=3).startswith(PNG)
    summary = pd.DataFrame(
        {
            "kind": ["none", "steer", "steer", "random", "random", "ablate"],
            "layers": ["", "1", "1", "1", "1", "1"],
            "scale": [np.nan, 0.0, 8.0, 0.0, 8.0, np.nan],
            "misalignment_rate": [0.1, 0.1, 0.4, 0.1, 0.12, 0.05],
            "mean_coherence": [80.0, 80.0, 60.0, 80.0, 78.0, 82.0],
        }
    )
    assert sweep_chart_png(summary).startswith(PNG)
    with pytest.raises(InputError, match="mean_coherence"):
        sweep_chart_png(summary.drop(columns="mean_coherence"))
    with pytest.raises(InputError, match="same names"):
        cosine_heatmap_png(square.rename(columns={"b": "c"}))
