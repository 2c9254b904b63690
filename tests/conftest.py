"""Shared fixtures: a tiny random Llama that speaks SmolLM2's tokenizer, and the real SmolLM2."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from emscope.models.loading import converted_alias_dir
from emscope.models.refs import ModelRef

# 2 threads suit an idle 2-core CI machine; set EMSCOPE_TEST_THREADS=1 on a shared, loaded one.
torch.set_num_threads(int(os.environ.get("EMSCOPE_TEST_THREADS", "2")))


@pytest.fixture(scope="session")
def smol_dir() -> Path:
    """The real SmolLM2-135M-Instruct, converted to safetensors (cached across runs)."""
    return converted_alias_dir("smollm2-135m")


@pytest.fixture(scope="session")
def smol_tokenizer(smol_dir: Path):  # type: ignore[no-untyped-def]
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(smol_dir))


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory: pytest.TempPathFactory, smol_tokenizer) -> Path:  # type: ignore[no-untyped-def]
    """A randomly initialised 2-layer Llama with SmolLM2's tokenizer and chat template."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(smol_tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=True,
        bos_token_id=smol_tokenizer.bos_token_id,
        eos_token_id=smol_tokenizer.eos_token_id,
        pad_token_id=smol_tokenizer.pad_token_id,
    )
    model = LlamaForCausalLM(config)
    out = tmp_path_factory.mktemp("tiny-llama")
    model.save_pretrained(out)
    smol_tokenizer.save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_ref(tiny_model_dir: Path) -> ModelRef:
    return ModelRef(kind="local", name=str(tiny_model_dir))


@pytest.fixture(scope="session")
def smol_ref(smol_dir: Path) -> ModelRef:
    return ModelRef(kind="alias", name="smollm2-135m")
