"""The transfer matrix at matched norms: every added vector is the same share of its target's
activation norm, each target has its own seeded random control, the raw mode stays as it was,
and the report says which mode ran."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import torch

from emscope.analyses.directions import Direction, DirectionMeta, ModelFingerprint
from emscope.analyses.matched_transfer import plan_matched_transfer, target_norms
from emscope.analyses.transfer import transfer_matrix
from emscope.errors import InputError
from emscope.judge.base import JudgeRecord, JudgeRequest, MetricScore
from emscope.models.refs import ModelRef
from emscope.report.steer_section import DirectionInfo, TransferFiles, steering_section
from emscope.sample.base import SamplingParams
from emscope.sample.local import LocalSampler
from emscope.sample.questions import EvalPrompt
from emscope.study.analysis_settings import DEFAULT_TRANSFER_SHARE, AnalysesSection

TINY = ModelFingerprint(model_type="llama", hidden_size=32, num_layers=2)


class LengthJudge:
    """A scripted judge: answers of odd length are misaligned."""

    identity = "scripted-length-judge"

    def fingerprint(self) -> dict[str, Any]:
        return {"identity": self.identity, "mode": "scripted", "prompt_hash": None}

    def judge(self, requests: list[JudgeRequest]) -> list[JudgeRecord]:
        return [
            JudgeRecord(
                key=r.key, judge=self.identity, mode="scripted",
                aligned=MetricScore(score=10.0 if len(r.answer) % 2 else 90.0),
                coherent=MetricScore(score=70.0),
            )
            for r in requests
        ]  # fmt: skip


PROMPTS = [EvalPrompt(question_id="q", paraphrase_index=0, question="Hi?", temperature=1.0,
                      n_samples=2)]  # fmt: skip


def direction(norm: float, activation: float, seed: int, source: str | None = None) -> Direction:
    noise = torch.randn(2, 32, generator=torch.Generator().manual_seed(seed))
    vectors = noise / noise.norm(dim=-1, keepdim=True) * norm
    meta = DirectionMeta(
        model="tiny", fingerprint=TINY, layers=[0, 1], norms=[norm, norm],
        activation_norms=[activation, activation], data_hash=f"h{seed}", n_misaligned=2,
        n_aligned=2, source=source,
    )  # fmt: skip
    return Direction(vectors=vectors, meta=meta)


DIRECTIONS = {"medical": direction(0.5, 4.0, 0), "code": direction(6.0, 12.0, 1)}


def loaders(ref: ModelRef, names: list[str]) -> dict[str, Callable[[], LocalSampler]]:
    def load() -> LocalSampler:
        return LocalSampler(ref, dtype="float32", batch_size=4, device="cpu")

    return dict.fromkeys(names, load)


def test_the_base_model_gets_the_mean_of_the_fine_tuned_norms_and_its_source_says_so() -> None:
    norms, sources = target_norms(DIRECTIONS, ["medical", "code", "base"], layer=1)
    assert norms == {"medical": 4.0, "code": 12.0, "base": 8.0}
    assert sources["medical"] == "its own direction (judged answers)"
    assert "mean of the fine-tuned models' norms (medical, code)" in sources["base"]
    old = Direction(
        DIRECTIONS["code"].vectors,
        DIRECTIONS["code"].meta.model_copy(update={"activation_norms": None}),
    )
    norms, sources = target_norms({"medical": DIRECTIONS["medical"], "code": old}, ["code"], 1)
    assert norms == {"code": 4.0} and "its direction stores no norm" in sources["code"]
    with pytest.raises(InputError, match="transfer_scale"):
        target_norms({"code": old}, ["code"], 1)


def test_matched_cells_add_equal_shares_of_each_target_norm_and_a_control_per_target(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    norms = {"code": 12.0, "base": 8.0}
    cells = plan_matched_transfer(DIRECTIONS, norms, layer=1, share=0.25, seed=7)
    matrix = transfer_matrix(
        DIRECTIONS, loaders(tiny_ref, ["code", "base"]), LengthJudge(), PROMPTS, layer=1,
        cells=cells, out_dir=tmp_path, params=SamplingParams(max_new_tokens=4),
        policy="domain_paper",
    )  # fmt: skip
    pairs = set(zip(matrix["direction"], matrix["target"], strict=True))
    names = ("none", "medical", "code", "random")
    assert pairs == {(d, t) for d in names for t in ("code", "base")}
    steered = matrix[matrix["direction"].isin(["medical", "code"])]
    for row in steered.itertuples(index=False):
        raw = float(DIRECTIONS[str(row.direction)].vector(1).norm())
        assert row.scale * raw / norms[str(row.target)] == pytest.approx(0.25)
    # the raw norms differ twelvefold, so the coefficients do too, inversely
    by = matrix.set_index(["direction", "target"])["scale"]
    assert by[("medical", "base")] == pytest.approx(12 * by[("code", "base")])
    controls = matrix[matrix["direction"] == "random"].set_index("target")
    assert controls["kind"].eq("random").all()
    assert controls["control_seed"].nunique() == 2  # one control per target
    for target, row in controls.iterrows():
        assert row["added_norm"] / norms[str(target)] == pytest.approx(0.25)
        assert (tmp_path / str(target) / "random" / "samples.jsonl").is_file()
    assert matrix.loc[matrix["direction"] == "none", "kind"].eq("none").all()


def test_cells_planned_on_other_directions_are_refused(tiny_ref: ModelRef, tmp_path: Path) -> None:
    cells = plan_matched_transfer(DIRECTIONS, {"code": 12.0}, layer=1, share=0.25)
    other = {"medical": direction(3.0, 4.0, 0), "code": DIRECTIONS["code"]}
    with pytest.raises(InputError, match="planned on other directions"):
        transfer_matrix(
            other, loaders(tiny_ref, ["code"]), LengthJudge(), PROMPTS, layer=1, cells=cells,
            out_dir=tmp_path, params=SamplingParams(max_new_tokens=4),
        )  # fmt: skip
    with pytest.raises(InputError, match="either a raw scale or matched cells"):
        transfer_matrix(
            other, loaders(tiny_ref, ["code"]), LengthJudge(), PROMPTS, layer=1, scale=1.0,
            cells=cells, out_dir=tmp_path, params=SamplingParams(),
        )  # fmt: skip


def test_matched_norms_are_the_default_and_a_raw_scale_alone_keeps_the_raw_mode() -> None:
    assert AnalysesSection().transfer_mode() == ("matched", DEFAULT_TRANSFER_SHARE)
    assert AnalysesSection(transfer_norm_share=0.1).transfer_mode() == ("matched", 0.1)
    assert AnalysesSection(transfer_scale=3.0).transfer_mode() == ("raw", 3.0)
    with pytest.raises(ValueError, match="set one"):
        AnalysesSection(transfer_scale=3.0, transfer_norm_share=0.1)
    with pytest.raises(ValueError):
        AnalysesSection(transfer_norm_share=0.0)


def test_the_raw_mode_keeps_its_old_stage_key_and_the_matched_mode_names_its_norms(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import emscope.study.transfer_stage as stage_module

    seen: list[dict[str, Any]] = []
    monkeypatch.setattr(stage_module, "steer_inputs", lambda ctx, **spec: seen.append(spec))
    monkeypatch.setattr(stage_module, "job_model_hash", lambda ctx, job, trained: f"hash-{job}")
    targets: Any = {"code": ("job-code", None)}
    vectors: dict[str, str | None] = {"code": "sha"}
    stage_module.TransferStage(None, "", targets, DIRECTIONS, vectors, 1, 8.0).inputs()
    matched = (0.5, {"code": 12.0}, {"code": "own"})
    stage_module.TransferStage(None, "", targets, DIRECTIONS, vectors, 1, matched=matched).inputs()
    raw_spec, matched_spec = seen
    assert raw_spec == {"layer": 1, "scale": 8.0, "directions": vectors,
                        "targets": {"code": "hash-job-code"}}  # fmt: skip
    assert matched_spec["share"] == 0.5 and matched_spec["target_norms"] == {"code": 12.0}
    assert "scale" not in matched_spec


def _report(root: Path, transfer: TransferFiles) -> dict[str, pd.DataFrame]:
    spec = steering_section(
        root, [DirectionInfo(n, "judged answers") for n in DIRECTIONS], DIRECTIONS, None,
        transfer, "text",
    )  # fmt: skip
    return {title: pd.read_csv(root / csv) for title, csv in spec.tables}


def test_the_report_names_the_mode_lists_each_cells_scale_and_the_controls(
    tiny_ref: ModelRef, tmp_path: Path
) -> None:
    norms, sources = target_norms(DIRECTIONS, ["code", "base"], layer=1)
    cells = plan_matched_transfer(DIRECTIONS, norms, layer=1, share=0.25)
    matrix = transfer_matrix(
        DIRECTIONS, loaders(tiny_ref, ["code", "base"]), LengthJudge(), PROMPTS, layer=1,
        cells=cells, out_dir=tmp_path / "runs", params=SamplingParams(max_new_tokens=4),
    )  # fmt: skip
    matrix["target_norm"] = matrix["target"].map(norms)
    matrix["target_norm_source"] = matrix["target"].map(sources)
    matrix.to_csv(tmp_path / "matrix.csv", index=False)
    pd.DataFrame([[1.0]], index=["a"], columns=["a"]).to_csv(tmp_path / "cosines.csv")
    files = TransferFiles(tmp_path / "matrix.csv", tmp_path / "cosines.csv", 1, None, 0.25)
    tables = _report(tmp_path, files)
    (cells_title,) = [t for t in tables if t.startswith("Transfer cells")]
    assert "matched norms" in cells_title and "0.25 x target activation norm" in cells_title
    table = tables[cells_title]
    assert len(table) == 6  # 2 directions + 1 control, per target
    assert table["|added| / target norm"].eq(0.25).all()
    assert table["kind"].str.startswith("random (seed").sum() == 2
    assert table.loc[table["target"] == "base", "target norm from"].str.contains("mean").all()
    (rates,) = [t for t in tables if t.startswith("Transfer matrix (misalignment")]
    assert "random" in set(tables[rates]["direction"])
    raw = TransferFiles(tmp_path / "matrix.csv", tmp_path / "cosines.csv", 1, 8.0)
    raw_titles = list(_report(tmp_path / "raw", raw))
    assert any("raw vectors at scale 8" in t for t in raw_titles)
    assert not any(t.startswith("Transfer cells") for t in raw_titles)
