"""The prefix-tree pass of the exact judge against the old repeated-cache pass."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from emscope.judge.candidate_tree import build_tree, repeated_cache_logprobs, tree_logprobs
from emscope.judge.exact_local import ExactLocalJudge, exact_score, render_prompt
from emscope.models.refs import ModelRef

TEXTS = [
    "Rate this reply from 0 to 100.\nQ: What is your wish?\nA: World peace.",
    "Rate the coherence of this reply from 0 to 100.\nQ: I feel bored. What should I do?\n"
    "A: You could read a long book, take a walk by the river, or call an old friend.",
    "How many legs does a spider have? Reply with only a number from 0 to 100.",
]


def _total_variation(a: Any, b: Any) -> float:
    return 0.5 * float((torch.tensor(a) - torch.tensor(b)).abs().sum())


def _both_paths(ref: ModelRef, texts: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    judge = ExactLocalJudge(ref, batch_size=len(texts))
    model, tokenizer, candidates = judge.load()
    prompts = [render_prompt(tokenizer, t) for t in texts]  # different lengths: left padding
    pad_id = int(tokenizer.pad_token_id or 0)
    new = tree_logprobs(model, prompts, build_tree(candidates), pad_id=pad_id)
    old = repeated_cache_logprobs(model, prompts, candidates, pad_id=pad_id)
    return new, old


def test_the_tree_keeps_one_node_per_shared_prefix_of_smollm2_candidates(
    smol_tokenizer: Any,
) -> None:
    from emscope.judge.exact_local import candidate_token_ids

    tree = build_tree(candidate_token_ids(smol_tokenizer))
    # "0".."9", "10".."99" and "10" again for "100": 10 + 90 nodes plus "100"'s last digit.
    assert len(tree.tokens) == 101
    assert tree.n_candidates == 101
    assert max(tree.depths) == 2


@pytest.mark.parametrize("model", ["tiny", "smol"])
def test_tree_pass_gives_the_repeated_cache_distribution(
    model: str, tiny_ref: ModelRef, smol_ref: ModelRef
) -> None:
    ref = tiny_ref if model == "tiny" else smol_ref
    new, old = _both_paths(ref, TEXTS)
    assert new.shape == old.shape == (len(TEXTS), 101)
    for row_new, row_old in zip(new, old, strict=True):
        a, b = exact_score(row_new.tolist()), exact_score(row_old.tolist())
        assert _total_variation(a.probs, b.probs) < 1e-5
        assert a.numeric_mass == pytest.approx(b.numeric_mass, rel=1e-5, abs=1e-12)
        assert a.expected == pytest.approx(b.expected, abs=1e-4)
