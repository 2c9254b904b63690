"""Dynamic right padding and seeded batch orders."""

from __future__ import annotations

import pytest
import torch

from emscope.train.collate import PaddingCollator, length_grouped_batches, shuffled_batches
from emscope.train.masking import IGNORE_INDEX, EncodedExample


def example(n: int, first: int = 10) -> EncodedExample:
    ids = list(range(first, first + n))
    return EncodedExample(input_ids=ids, labels=[IGNORE_INDEX] * (n // 2) + ids[n // 2 :])


def test_collator_pads_to_the_longest_example_on_the_right() -> None:
    batch = PaddingCollator(pad_token_id=0)([example(3), example(5), example(4)])
    assert {k: tuple(v.shape) for k, v in batch.items()} == {
        "input_ids": (3, 5),
        "attention_mask": (3, 5),
        "labels": (3, 5),
    }
    assert batch["input_ids"][0].tolist() == [10, 11, 12, 0, 0]
    assert batch["attention_mask"][0].tolist() == [1, 1, 1, 0, 0]
    assert batch["labels"][0].tolist() == [IGNORE_INDEX, 11, 12, IGNORE_INDEX, IGNORE_INDEX]
    assert batch["attention_mask"][1].tolist() == [1] * 5
    assert batch["labels"][2].tolist() == [IGNORE_INDEX, IGNORE_INDEX, 12, 13, IGNORE_INDEX]


def test_collator_refuses_an_empty_batch() -> None:
    with pytest.raises(ValueError, match="empty batch"):
        PaddingCollator(0)([])


def test_shuffled_batches_cover_every_index_once_and_repeat_with_the_seed() -> None:
    first = shuffled_batches(10, 3, torch.Generator().manual_seed(7))
    again = shuffled_batches(10, 3, torch.Generator().manual_seed(7))
    other = shuffled_batches(10, 3, torch.Generator().manual_seed(8))
    assert first == again and first != other
    assert [len(b) for b in first] == [3, 3, 3, 1]
    assert sorted(i for b in first for i in b) == list(range(10))


def test_length_grouped_batches_hold_similar_lengths_and_are_seeded() -> None:
    lengths = [5, 100, 7, 98, 6, 99, 8, 97]
    batches = length_grouped_batches(lengths, 2, torch.Generator().manual_seed(0))
    assert batches == length_grouped_batches(lengths, 2, torch.Generator().manual_seed(0))
    assert sorted(i for b in batches for i in b) == list(range(8))
    for b in batches:
        spread = max(lengths[i] for i in b) - min(lengths[i] for i in b)
        assert spread <= 2
