"""LoRA targets a model lacks are refused when the study loads, naming the field, before any
dataset is built or any step trained."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from emscope.errors import InputError
from emscope.models.refs import ModelRef
from emscope.study.config import load_study
from emscope.train.targets import check_lora_targets


def write_study(path: Path, model: str, **train: Any) -> Path:
    study = {
        "name": "targets",
        "model": model,
        "engine": "scripted",
        "domains": ["incorrect_math"],
        "conditions": ["misaligned"],
        "train": {"preset": "demo", **train},
        "judge": {"spec": "scripted"},
    }
    path.write_text(yaml.safe_dump(study, sort_keys=False), encoding="utf-8")
    return path


def test_the_tiny_llama_has_every_projection_and_its_two_layers(tiny_ref: ModelRef) -> None:
    projections = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert check_lora_targets(tiny_ref, projections, [0, 1]) is True
    with pytest.raises(InputError, match="no module 'c_attn'") as caught:
        check_lora_targets(tiny_ref, ["q_proj", "c_attn"], None)
    assert caught.value.field == "target_modules"
    assert "q_proj" in caught.value.message  # the names it does have
    with pytest.raises(InputError, match="has 2 layers") as caught:
        check_lora_targets(tiny_ref, ["q_proj"], [0, 5])
    assert caught.value.field == "layers_to_transform"


def test_a_dotted_suffix_matches_as_peft_matches_it(tiny_ref: ModelRef) -> None:
    assert check_lora_targets(tiny_ref, ["self_attn.q_proj", "mlp.down_proj"], None)
    with pytest.raises(InputError):
        check_lora_targets(tiny_ref, ["attn.q_proj"], None)  # not a whole dotted part


def test_the_embedded_alias_is_checked_without_converting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    assert check_lora_targets(ModelRef(kind="alias", name="smollm2-135m"), ["v_proj"], [29])
    assert not (tmp_path / "cache" / "models").exists()  # read from the GGUF's metadata


def test_an_uncached_hub_model_is_left_to_training() -> None:
    ref = ModelRef(kind="hub", name="emscope-tests/no-such-model")
    assert check_lora_targets(ref, ["anything"], [1000]) is False


def test_a_study_naming_a_missing_target_fails_at_load_with_the_override_field(
    tmp_path: Path, tiny_model_dir: Path
) -> None:
    path = write_study(
        tmp_path / "study.yaml", str(tiny_model_dir), overrides={"target_modules": ["c_proj"]}
    )
    with pytest.raises(InputError, match="no module 'c_proj'") as caught:
        load_study(path)
    assert caught.value.field == "train.overrides.target_modules"
    assert caught.value.file == str(path)


def test_a_preset_whose_targets_the_model_lacks_names_the_preset(
    tmp_path: Path, tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from emscope.train import config

    demo = config.get_preset("demo")
    monkeypatch.setitem(
        config.PRESETS, "demo", demo.model_copy(update={"target_modules": ["c_fc"]})
    )
    with pytest.raises(InputError, match=r"preset 'demo'.*c_fc") as caught:
        load_study(write_study(tmp_path / "study.yaml", str(tiny_model_dir)))
    assert caught.value.field == "train.preset"
