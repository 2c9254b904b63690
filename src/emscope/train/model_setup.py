"""The model a LoRA run trains: base weights in the right dtype, activation checkpointing, LoRA."""

from __future__ import annotations

from typing import Any

import torch

from emscope.models.loading import bf16_supported, load_model, peft_deprecation_quiet
from emscope.models.refs import ModelRef
from emscope.train.config import TrainConfig


def use_bf16(config: TrainConfig) -> bool:
    """``bf16="auto"`` means bf16 where the hardware supports it (CUDA or a bf16 CPU)."""
    return bf16_supported() if config.bf16 == "auto" else bool(config.bf16)


def base_dtype(bf16: bool, device: torch.device) -> torch.dtype:
    """On CUDA a bf16 run stores the frozen base in bf16 (half the memory; peft keeps the LoRA
    weights in fp32); on CPU the base stays fp32 and only the matmuls run in bf16."""
    return torch.bfloat16 if bf16 and device.type == "cuda" else torch.float32


def enable_gradient_checkpointing(model: Any) -> None:
    """Recompute activations in backward (non-reentrant), with inputs that carry gradients."""
    kwargs = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)
    # The embeddings are frozen, so their output has no grad; peft's LoRA layers inside
    # checkpointed blocks need it to.
    model.enable_input_require_grads()
    model.config.use_cache = False


def attach_lora(model: Any, config: TrainConfig) -> Any:
    """Wrap ``model`` in a peft LoRA model configured from ``config``."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=config.r,
        lora_alpha=config.alpha,
        lora_dropout=config.dropout,
        target_modules=list(config.target_modules),
        use_rslora=config.use_rslora,
        layers_to_transform=config.layers_to_transform,
        bias="none",
        task_type="CAUSAL_LM",
    )
    with peft_deprecation_quiet():
        return get_peft_model(model, lora)


def build_model(base_ref: ModelRef, config: TrainConfig, device: torch.device, bf16: bool) -> Any:
    """The base model of ``base_ref`` on ``device`` with a fresh LoRA adapter, in train mode."""
    model = load_model(base_ref, dtype=base_dtype(bf16, device), trainable=True, device=device)
    if config.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    model = attach_lora(model, config)
    model.train()
    return model
