"""Decoder-block outputs, captured with forward hooks, and their mean over answer tokens.

Layers are numbered by block index (0 = first decoder block). The output of block ``L`` equals
Hugging Face's ``hidden_states[L + 1]`` for every block but the last, whose ``hidden_states``
entry already has the final norm applied (protocol §9).

>>> acts = mean_answer_activations(model, tokenizer, chats, layers=[3, 4])  # doctest: +SKIP
>>> acts.shape  # (n_conversations, n_layers, hidden_size)  # doctest: +SKIP
"""

from __future__ import annotations

import inspect
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from emscope.errors import EmscopeError, InputError
from emscope.train.masking import IGNORE_INDEX, MessageLike, assistant_token_mask

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# Names under which decoder-only architectures keep their block list (Llama/Qwen/Gemma:
# ``model.layers``; GPT-2 style: ``transformer.h``; GPT-NeoX: ``gpt_neox.layers``).
_LAYER_LIST_NAMES = ("layers", "h", "blocks")


def _num_layers(model: nn.Module) -> int | None:
    config = getattr(model, "config", None)
    if config is None:
        return None
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    value = getattr(text, "num_hidden_layers", None)
    return int(value) if value is not None else None


def decoder_layers(model: nn.Module) -> nn.ModuleList:
    """The list of decoder blocks of a causal LM, also when wrapped by peft.

    The shallowest ``ModuleList`` named like a block list whose length is the config's
    ``num_hidden_layers`` wins, so MLP or expert lists inside blocks are never picked.
    """
    expected = _num_layers(model)
    candidates = [
        (name.count("."), name, module)
        for name, module in model.named_modules()
        if isinstance(module, nn.ModuleList)
        and name.rsplit(".", 1)[-1] in _LAYER_LIST_NAMES
        and (expected is None or len(module) == expected)
    ]
    if not candidates:
        raise EmscopeError(
            f"cannot find the decoder block list of {type(model).__name__} "
            f"(looked for a ModuleList named {'/'.join(_LAYER_LIST_NAMES)} "
            f"with {expected} entries)"
        )
    return min(candidates, key=lambda c: (c[0], c[1]))[2]


def check_layers(model: nn.Module, layers: Sequence[int]) -> list[int]:
    """``layers`` as a list, each checked to be a valid block index of ``model``."""
    n = len(decoder_layers(model))
    bad = [layer for layer in layers if not 0 <= layer < n]
    if bad or not layers:
        raise InputError(
            f"layers must be block indices in 0..{n - 1}, got {list(layers)}", field="layers"
        )
    return list(layers)


def block_hidden(output: Any) -> torch.Tensor:
    """The hidden-state tensor of a block's output (a tensor, or a tuple that starts with it)."""
    return output if isinstance(output, torch.Tensor) else output[0]


def with_block_hidden(output: Any, hidden: torch.Tensor) -> Any:
    """A block output of the same shape as ``output`` carrying ``hidden`` instead."""
    if isinstance(output, torch.Tensor):
        return hidden
    return (hidden, *output[1:])


@contextmanager
def record_block_outputs(
    model: nn.Module, layers: Sequence[int]
) -> Iterator[dict[int, torch.Tensor]]:
    """Within the block, each forward pass stores block ``L``'s output (detached) at ``out[L]``.

    Every forward pass overwrites the previous one's tensors. Hooks are removed on exit.
    """
    blocks = decoder_layers(model)
    outputs: dict[int, torch.Tensor] = {}

    def recorder(layer: int) -> Any:
        def hook(module: nn.Module, args: Any, output: Any) -> None:
            outputs[layer] = block_hidden(output).detach()

        return hook

    handles = [
        blocks[layer].register_forward_hook(recorder(layer))
        for layer in check_layers(model, layers)
    ]
    try:
        yield outputs
    finally:
        for handle in handles:
            handle.remove()


def answer_token_positions(
    tokenizer: PreTrainedTokenizerBase, messages: Sequence[MessageLike]
) -> tuple[list[int], list[bool]]:
    """Token ids of a rendered conversation and which of them are assistant content.

    Positions come from :func:`assistant_token_mask`; the end-of-turn token it also labels is
    dropped (it is template markup, not answer text), as is any other special token.
    """
    encoded = assistant_token_mask(tokenizer, messages)
    special = set(tokenizer.all_special_ids)
    is_answer = [
        label != IGNORE_INDEX and token not in special
        for token, label in zip(encoded.input_ids, encoded.labels, strict=True)
    ]
    if not any(is_answer):
        raise InputError("the assistant turn has no answer tokens", field="messages")
    return encoded.input_ids, is_answer


def _forward_kwargs(model: nn.Module) -> dict[str, Any]:
    # Only the block outputs are needed: skip the KV cache and compute logits for one position
    # instead of every position (the LM head is a large share of a small model's cost).
    kwargs: dict[str, Any] = {"use_cache": False}
    get_base = getattr(model, "get_base_model", None)
    base = get_base() if callable(get_base) else model
    if "logits_to_keep" in inspect.signature(base.forward).parameters:
        kwargs["logits_to_keep"] = 1
    return kwargs


def _pad_right(rows: list[list[Any]], value: Any, dtype: torch.dtype) -> torch.Tensor:
    width = max(len(row) for row in rows)
    return torch.tensor([row + [value] * (width - len(row)) for row in rows], dtype=dtype)


def mean_answer_activations(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    conversations: Sequence[Sequence[MessageLike]],
    layers: Sequence[int],
    batch_size: int = 8,
) -> torch.Tensor:
    """Per conversation and layer, the mean block output over its answer tokens (float32).

    Returns ``Tensor[n_conversations, len(layers), hidden_size]`` in the order given. Batches
    are right-padded (so positions match an unpadded pass) and formed from conversations of
    similar length; padding and non-answer positions never enter a mean.
    """
    if batch_size < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}", field="batch_size")
    layers = check_layers(model, layers)
    encoded = [answer_token_positions(tokenizer, chat) for chat in conversations]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i][0]))
    device = next(model.parameters()).device
    pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    result: list[torch.Tensor | None] = [None] * len(encoded)
    kwargs = _forward_kwargs(model)
    with record_block_outputs(model, layers) as outputs, torch.inference_mode():
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            ids = _pad_right([encoded[i][0] for i in index], pad_id, torch.long).to(device)
            real = _pad_right([[1] * len(encoded[i][0]) for i in index], 0, torch.long).to(device)
            answer = _pad_right([encoded[i][1] for i in index], False, torch.bool).to(device)
            model(input_ids=ids, attention_mask=real, **kwargs)
            weights = answer.unsqueeze(-1).float()
            means = torch.stack(
                [(outputs[layer].float() * weights).sum(1) / weights.sum(1) for layer in layers],
                dim=1,
            )
            for row, i in enumerate(index):
                result[i] = means[row].cpu()
    if not result:
        raise InputError("no conversations to read activations from", field="conversations")
    return torch.stack([r for r in result if r is not None])
