"""The training objective: summed next-token loss over labelled tokens, and its no-grad mean."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from contextlib import nullcontext
from typing import TYPE_CHECKING, Any

import torch
import torch.nn.functional as F

from emscope.train.collate import PaddingCollator
from emscope.train.masking import IGNORE_INDEX, EncodedExample

if TYPE_CHECKING:
    from transformers import PreTrainedModel

Batch = dict[str, torch.Tensor]


def summed_token_loss(model: PreTrainedModel, batch: Batch) -> torch.Tensor:
    """Sum of next-token cross-entropy over labelled positions (computed in fp32)."""
    logits = model(
        input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], use_cache=False
    ).logits
    shift_logits = logits[:, :-1, :].float()
    shift_labels = batch["labels"][:, 1:]
    return F.cross_entropy(
        shift_logits.reshape(-1, shift_logits.size(-1)),
        shift_labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


def n_target_tokens(batch: Batch) -> int:
    return int((batch["labels"][:, 1:] != IGNORE_INDEX).sum())


def accumulate_gradients(
    model: Any, batches: list[Batch], autocast: Callable[[], Any] = nullcontext
) -> tuple[float, int]:
    """Backpropagate one accumulation window; returns (mean loss, labelled tokens).

    The loss is the mean over every labelled token of the whole window, so a micro-batch with
    more answer tokens weighs more -- the same gradient as one big batch.
    """
    total_tokens = sum(n_target_tokens(b) for b in batches)
    if total_tokens == 0:
        return float("nan"), 0
    summed = 0.0
    for batch in batches:
        with autocast():
            loss_sum = summed_token_loss(model, batch)
        (loss_sum / total_tokens).backward()
        summed += float(loss_sum.detach())
    return summed / total_tokens, total_tokens


def mean_token_loss(
    model: Any,
    examples: Sequence[EncodedExample],
    collate: PaddingCollator,
    *,
    batch_size: int,
    device: torch.device,
    autocast: Callable[[], Any] = nullcontext,
) -> tuple[float, int]:
    """Mean loss per labelled token over ``examples``, in eval mode without gradients.

    Returns (mean loss, labelled tokens); the model goes back to the mode it was in.
    """
    was_training = model.training
    model.eval()
    total, n_tokens = 0.0, 0
    try:
        with torch.no_grad():
            for start in range(0, len(examples), batch_size):
                chunk = examples[start : start + batch_size]
                batch = {k: v.to(device) for k, v in collate(chunk).items()}
                with autocast():
                    total += float(summed_token_loss(model, batch))
                n_tokens += n_target_tokens(batch)
    finally:
        model.train(was_training)
    return (total / n_tokens if n_tokens else float("nan")), n_tokens
