"""Model-Organisms' steering_vector.pt: exported from and imported into emscope directions,
checked against the target model, loaded weights-only so a pickle payload never runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch
from transformers import LlamaConfig
from typer.testing import CliRunner

from emscope.analyses.directions import (
    Direction,
    DirectionMeta,
    ModelFingerprint,
    read_direction,
    save_direction,
)
from emscope.analyses.shared_vectors import (
    export_shared_vector,
    import_shared_vector,
    read_shared_vector,
)
from emscope.cli import app
from emscope.errors import InputError

HIDDEN, LAYERS = 16, 4


@pytest.fixture
def target(tmp_path: Path) -> Path:
    """A model directory with only a config (the check reads no weights)."""
    folder = tmp_path / "tiny-llama"
    LlamaConfig(
        hidden_size=HIDDEN,
        num_hidden_layers=LAYERS,
        intermediate_size=32,
        num_attention_heads=2,
        num_key_value_heads=2,
        vocab_size=64,
    ).save_pretrained(folder)
    return folder


def saved_direction(folder: Path, layers: list[int]) -> Path:
    vectors = torch.randn(len(layers), HIDDEN, generator=torch.Generator().manual_seed(0))
    meta = DirectionMeta(
        model="tiny",
        fingerprint=ModelFingerprint(model_type="llama", hidden_size=HIDDEN, num_layers=LAYERS),
        layers=layers,
        norms=vectors.norm(dim=-1).tolist(),
        data_hash="x",
        n_misaligned=3,
        n_aligned=3,
    )
    return save_direction(Direction(vectors=vectors, meta=meta), folder)


def test_an_exported_vector_imports_back_to_the_same_addition(tmp_path: Path, target: Path) -> None:
    source = saved_direction(tmp_path / "dir", [1, 2])
    file = export_shared_vector(source, 2, tmp_path / "shared", alpha=4.0, model=str(target))
    assert file.name == "steering_vector.pt"
    raw = torch.load(file, weights_only=True)
    assert set(raw) == {"steering_vector", "layer_idx", "d_model", "alpha"}
    assert raw["layer_idx"] == 2 and raw["d_model"] == HIDDEN and raw["alpha"] == 4.0
    back = read_direction(import_shared_vector(file, str(target), tmp_path / "imported"))
    original = read_direction(source)
    assert back.meta.layers == [2]  # block index on both sides: no shift
    assert torch.allclose(back.vector(2), 4.0 * original.vector(2))  # alpha folded in
    assert back.meta.fingerprint == original.meta.fingerprint
    assert "alpha 4 folded" in (back.meta.source or "")


def test_a_vector_of_another_width_or_a_missing_layer_is_refused(
    tmp_path: Path, target: Path
) -> None:
    wide = tmp_path / "wide.pt"
    torch.save(
        {
            "steering_vector": torch.zeros(HIDDEN * 2),
            "layer_idx": 1,
            "d_model": HIDDEN * 2,
            "alpha": 1.0,
        },
        wide,
    )
    with pytest.raises(InputError, match="hidden_size"):
        import_shared_vector(wide, str(target), tmp_path / "a")
    deep = tmp_path / "deep.pt"
    torch.save(
        {
            "steering_vector": torch.zeros(HIDDEN),
            "layer_idx": LAYERS,
            "d_model": HIDDEN,
            "alpha": 1.0,
        },
        deep,
    )
    with pytest.raises(InputError, match="outside the target model's 4 decoder blocks"):
        import_shared_vector(deep, str(target), tmp_path / "b")
    lying = tmp_path / "lying.pt"
    torch.save({"steering_vector": torch.zeros(HIDDEN), "layer_idx": 0, "d_model": 7}, lying)
    with pytest.raises(InputError, match="d_model is 7"):
        read_shared_vector(lying)


class _Payload:
    """Pickles to a call that would create a file when unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, int]]:
        return (os.open, (str(self.marker), os.O_CREAT | os.O_WRONLY))


def test_a_pickle_payload_is_refused_and_never_runs(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "steering_vector.pt"
    torch.save(
        {"steering_vector": torch.zeros(HIDDEN), "layer_idx": 0, "alpha": _Payload(marker)}, evil
    )
    with pytest.raises(InputError, match="refused"):
        read_shared_vector(evil)
    assert not marker.exists()


def test_the_cli_exports_and_imports(tmp_path: Path, target: Path) -> None:
    source = saved_direction(tmp_path / "dir", [3])
    runner = CliRunner()
    out = tmp_path / "sv.pt"
    result = runner.invoke(app, ["steer", "export", str(source), "--layer", "3", "--out", str(out)])
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["steer", "import", str(out), "--model", str(target), "--out", str(tmp_path / "imp")]
    )
    assert result.exit_code == 0, result.output
    assert torch.allclose(
        read_direction(tmp_path / "imp").vector(3), read_direction(source).vector(3)
    )
    result = runner.invoke(app, ["steer", "export", str(source), "--layer", "1", "--out", str(out)])
    assert result.exit_code == 2 and "no vector for layer 1" in result.output
