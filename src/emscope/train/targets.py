"""LoRA targets checked against the model's architecture when a study loads, not at training.

The model is built from its ``config.json`` on the meta device (no weights are read or
allocated), so a 7B model takes about as long as a tiny one. A ``target_modules`` entry matches
as peft matches it: a module named exactly so, or whose dotted name ends with ``.NAME``.

A hub model that is not in the local Hugging Face cache has no config to read here; its check
is left to training (which cannot start without the model anyway) and :func:`check_lora_targets`
says so by returning False.
"""

from __future__ import annotations

from functools import lru_cache

from emscope.errors import InputError
from emscope.models.refs import ModelRef

# Module types LoRA can adapt (peft's LoRA supports these layer kinds).
_ADAPTABLE = ("Linear", "Conv1D", "Conv1d", "Conv2d", "Embedding")


def _config_source(ref: ModelRef) -> tuple[str, str | None] | None:
    """Where the model's config lives locally (a path or hub id, and a GGUF file name for a
    built-in alias not converted yet), or None for an uncached hub model."""
    from emscope.models.loading import alias_config_source

    if ref.kind == "alias":
        return alias_config_source(ref.name)
    if ref.kind == "local":
        return ref.name, None
    if ref.kind == "hub":
        from huggingface_hub import try_to_load_from_cache

        found = try_to_load_from_cache(ref.name, "config.json")
        return (ref.name, None) if isinstance(found, str) else None
    return None


@lru_cache(maxsize=16)
def _architecture(source: str, gguf_file: str | None) -> tuple[frozenset[str], int | None]:
    """The adaptable modules' dotted names and the number of decoder layers."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    extra = {"gguf_file": gguf_file} if gguf_file else {}
    config = AutoConfig.from_pretrained(source, local_files_only=True, **extra)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    names = frozenset(
        name for name, module in model.named_modules() if type(module).__name__ in _ADAPTABLE
    )
    layers = getattr(config.get_text_config(), "num_hidden_layers", None)
    return names, layers


def check_lora_targets(
    ref: ModelRef, target_modules: list[str], layers_to_transform: list[int] | None
) -> bool:
    """Raise an :class:`InputError` naming the first target the model lacks; True when checked,
    False when the model's config is not available locally (see the module docstring)."""
    source = _config_source(ref)
    if source is None:
        return False
    names, n_layers = _architecture(*source)
    for target in target_modules:
        if not any(name == target or name.endswith("." + target) for name in names):
            leaves = sorted({name.rsplit(".", 1)[-1] for name in names})
            raise InputError(
                f"{ref} has no module {target!r} that LoRA can adapt; its adaptable modules are "
                f"named {', '.join(leaves)}",
                field="target_modules",
            )
    if layers_to_transform and n_layers is not None:
        beyond = [i for i in layers_to_transform if not 0 <= i < n_layers]
        if beyond:
            raise InputError(
                f"{ref} has {n_layers} layers (0..{n_layers - 1}); no layer {beyond[0]}",
                field="layers_to_transform",
            )
    return True
