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
