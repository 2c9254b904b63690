"""Batches for training: dynamic right padding, and an optional seeded length-grouped order."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from emscope.train.masking import IGNORE_INDEX, EncodedExample


class PaddingCollator:
    """Pad a batch to its longest example: ids with ``pad_token_id``, labels with -100.

    Labels are copied from the examples, never rebuilt from ids, so when pad == eos the real
    end-of-turn tokens stay labelled and only the padding is ignored.
    """

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = pad_token_id

    def __call__(self, batch: Sequence[EncodedExample]) -> dict[str, torch.Tensor]:
        if not batch:
            raise ValueError("cannot collate an empty batch")
        width = max(len(ex.input_ids) for ex in batch)
        ids = torch.full((len(batch), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(batch), width), IGNORE_INDEX, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ex in enumerate(batch):
            n = len(ex.input_ids)
            ids[row, :n] = torch.tensor(ex.input_ids, dtype=torch.long)
            labels[row, :n] = torch.tensor(ex.labels, dtype=torch.long)
            mask[row, :n] = 1
        return {"input_ids": ids, "attention_mask": mask, "labels": labels}


def shuffled_batches(n: int, batch_size: int, generator: torch.Generator) -> list[list[int]]:
    """Indices ``0..n-1`` in a seeded random order, cut into batches (the last may be short)."""
    order = torch.randperm(n, generator=generator).tolist()
    return [order[i : i + batch_size] for i in range(0, n, batch_size)]


def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, generator: torch.Generator, *, group_factor: int = 50
) -> list[list[int]]:
    """Seeded batches of similar-length examples, so little compute goes to padding.

    Shuffle, sort within windows of ``batch_size * group_factor`` examples by length, cut into
    batches, then shuffle the batch order so long and short batches interleave.
    """
    order = torch.randperm(len(lengths), generator=generator).tolist()
    window = batch_size * group_factor
    batches: list[list[int]] = []
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: -lengths[i])
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    perm = torch.randperm(len(batches), generator=generator).tolist()
    return [batches[i] for i in perm]
