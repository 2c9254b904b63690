from __future__ import annotations

from pathlib import Path

import pytest

from emscope.errors import UnknownModelError
from emscope.models.loading import load_model, load_tokenizer
from emscope.models.refs import parse_model_ref


def test_alias_parses_to_alias_kind() -> None:
    assert parse_model_ref("smollm2-135m").kind == "alias"


def test_openai_prefix_is_an_api_model() -> None:
    ref = parse_model_ref("openai/gpt-4o-mini")
    assert (ref.kind, ref.provider, ref.name) == ("api", "openai", "gpt-4o-mini")


def test_hub_id_is_recognised() -> None:
    assert parse_model_ref("HuggingFaceTB/SmolLM2-135M-Instruct").kind == "hub"


def test_unknown_name_lists_the_aliases() -> None:
    with pytest.raises(UnknownModelError, match="smollm2-135m"):
        parse_model_ref("no-such-model")


def test_local_directory_is_a_local_model(tiny_model_dir: Path) -> None:
    ref = parse_model_ref(str(tiny_model_dir))
    assert ref.kind == "local"
    assert load_tokenizer(ref).pad_token is not None


def test_base_plus_adapter_and_adapter_alone(tiny_model_dir: Path, tmp_path: Path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    peft_model = get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"]))
    adapter = tmp_path / "adapter"
    peft_model.save_pretrained(adapter)
    combined = parse_model_ref(f"{tiny_model_dir}+{adapter}")
    assert combined.adapter == adapter and combined.name == str(tiny_model_dir)
    alone = parse_model_ref(str(adapter))
    assert alone.adapter == adapter
    model = load_model(combined)
    assert hasattr(model, "peft_config")


def test_adapter_path_that_is_not_an_adapter_is_rejected(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    with pytest.raises(UnknownModelError, match="not a LoRA adapter"):
        parse_model_ref(f"{tiny_model_dir}+{tmp_path}")


def test_embedded_alias_converts_and_loads(smol_dir: Path) -> None:
    assert (smol_dir / "model.safetensors").is_file()
    tokenizer = load_tokenizer(parse_model_ref("smollm2-135m"))
    assert "<|im_start|>" in (tokenizer.chat_template or "")
