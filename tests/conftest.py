"""Shared fixtures: a tiny random Llama that speaks SmolLM2's tokenizer, and the real SmolLM2."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from emscope.models.loading import converted_alias_dir
from emscope.models.refs import ModelRef
from tiny_models import save_tiny_llama

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
    out = tmp_path_factory.mktemp("tiny-llama")
    return save_tiny_llama(out, smol_tokenizer, tie_word_embeddings=True)


@pytest.fixture
def one_torch_thread() -> Iterator[None]:
    """On a shared, oversubscribed CPU two OpenMP threads ran a SmolLM2 step 25x slower than one.

    Training tests take it with ``pytestmark = pytest.mark.usefixtures("one_torch_thread")``.
    """
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def tiny_ref(tiny_model_dir: Path) -> ModelRef:
    return ModelRef(kind="local", name=str(tiny_model_dir))


@pytest.fixture(scope="session")
def smol_ref(smol_dir: Path) -> ModelRef:
    return ModelRef(kind="alias", name="smollm2-135m")


@pytest.fixture(scope="session")
def lora_family(tmp_path_factory: pytest.TempPathFactory, smol_tokenizer) -> dict[str, Path]:  # type: ignore[no-untyped-def]
    """A tiny untied random Llama ("base") with two live random adapters and a zero one."""
    from tiny_models import save_tiny_adapter

    root = tmp_path_factory.mktemp("lora-family")
    base = save_tiny_llama(root / "base", smol_tokenizer, tie_word_embeddings=False)
    return {
        "base": base,
        "a": save_tiny_adapter(root / "a", base, seed=1),
        "b": save_tiny_adapter(root / "b", base, seed=2, rank=8),
        "zero": save_tiny_adapter(root / "zero", base, seed=3, zero=True),
    }
