"""Tiny randomly initialised models for logic tests (built in a second, no download)."""

from __future__ import annotations

from pathlib import Path

import torch


def save_tiny_llama(out: Path, tokenizer, *, tie_word_embeddings: bool) -> Path:  # type: ignore[no-untyped-def]
    """Save a randomly initialised (seed 0) 2-layer Llama with ``tokenizer`` into ``out``."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    LlamaForCausalLM(config).save_pretrained(out)
    tokenizer.save_pretrained(out)
    return out


LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def save_tiny_adapter(
    out: Path, base_dir: Path, *, seed: int, rank: int = 4, zero: bool = False
) -> Path:
    """Save a LoRA adapter over the tiny model in ``base_dir``: random A and B (a live adapter),
    or with ``zero`` peft's default init (B = 0, so the adapter changes nothing)."""
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(str(base_dir), dtype=torch.float32)
    config = LoraConfig(
        r=rank,
        lora_alpha=2 * rank,
        target_modules=list(LORA_TARGETS),
        init_lora_weights=zero,  # True is peft's default (B = 0); False draws B at random
    )
    model = get_peft_model(base, config)
    model.save_pretrained(out)
    return out
