"""Scoring many short candidate continuations of one prompt with one shared prefix.

The exact judge needs log P(candidate | prompt) for the 101 answers "0".."100" (each followed
by the end-of-turn token). The candidates share most of their tokens ("1", "10", "100"), so
they form a tree. :func:`tree_logprobs` runs one pass over the (left-padded) prompts, keeps the
KV cache, then one pass over the tree's nodes laid out flat after each prompt: a 4D attention
mask lets every node see the prompt and its own ancestors only, and each node's position is the
prompt length plus its depth. The prompt's cache is never copied; the second pass reads about
101 tokens per prompt whatever the batch.

:func:`repeated_cache_logprobs` is the previous way (the cache repeated once per candidate,
one right-padded row per candidate), kept as the reference the tree pass is tested and
benchmarked against.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from emscope.errors import EmscopeError

if TYPE_CHECKING:
    from transformers import PreTrainedModel


@dataclass(frozen=True)
class CandidateTree:
    """The candidates' shared prefixes as tree nodes, and how each candidate's tokens are read.

    ``tokens[i]`` is node i's last token, ``parents[i]`` its parent node (-1: a child of the
    prompt), ``depths[i]`` its distance from the prompt (0 for the first token). Node i stands
    for a prefix that some candidate continues; a candidate's first token is read from the
    prompt's last position (``first``), its j-th token from the node of its first j tokens
    (``steps``: flat ``(candidate, node, token)`` triples).
    """

    tokens: tuple[int, ...]
    parents: tuple[int, ...]
    depths: tuple[int, ...]
    first: tuple[int, ...]
    steps: tuple[tuple[int, int, int], ...]

    @property
    def n_candidates(self) -> int:
        return len(self.first)

    def ancestor_mask(self) -> torch.Tensor:
        """``[N, N]`` bool: entry (i, j) is True when node j is node i or one of its ancestors."""
        n = len(self.tokens)
        mask = torch.zeros(n, n, dtype=torch.bool)
        for i in range(n):
            j = i
            while j >= 0:
                mask[i, j] = True
                j = self.parents[j]
        return mask


def build_tree(candidates: Sequence[Sequence[int]]) -> CandidateTree:
    """The prefix tree of ``candidates`` (token-id sequences, each at least one token long).

    >>> tree = build_tree([[5, 9], [5, 6, 9], [7, 9]])
    >>> tree.tokens, tree.parents, tree.depths, tree.first
    ((5, 6, 7), (-1, 0, -1), (0, 1, 0), (5, 5, 7))
    >>> tree.steps
    ((0, 0, 9), (1, 0, 6), (1, 1, 9), (2, 2, 9))
    """
    index: dict[tuple[int, ...], int] = {}
    tokens: list[int] = []
    parents: list[int] = []
    depths: list[int] = []
    steps: list[tuple[int, int, int]] = []
    for k, candidate in enumerate(candidates):
        if not candidate:
            raise EmscopeError(f"candidate {k} has no tokens")
        for j in range(1, len(candidate)):
            prefix = tuple(candidate[:j])
            node = index.get(prefix)
            if node is None:
                node = index[prefix] = len(tokens)
                tokens.append(int(candidate[j - 1]))
                parents.append(index[prefix[:-1]] if j > 1 else -1)
                depths.append(j - 1)
            steps.append((k, node, int(candidate[j])))
    first = tuple(int(c[0]) for c in candidates)
    return CandidateTree(tuple(tokens), tuple(parents), tuple(depths), first, tuple(steps))


def _left_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([[pad_id] * (width - len(r)) + list(r) for r in rows])
    mask = torch.tensor([[0] * (width - len(r)) + [1] * len(r) for r in rows])
    return ids, mask


def _right_pad(rows: Sequence[Sequence[int]], pad_id: int) -> tuple[torch.Tensor, torch.Tensor]:
    width = max(len(r) for r in rows)
    ids = torch.tensor([list(r) + [pad_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return ids, mask


def _prefix_pass(
    model: PreTrainedModel, prompts: Sequence[Sequence[int]], pad_id: int
) -> tuple[torch.Tensor, torch.Tensor, object]:
    """(attention mask of the padded prompts, log-probs after each prompt ``[B, V]``, cache)."""
    device = model.device
    prompt_ids, prompt_mask = (t.to(device) for t in _left_pad(prompts, pad_id))
    positions = (prompt_mask.cumsum(-1) - 1).clamp(min=0)
    out = model(
        input_ids=prompt_ids,
        attention_mask=prompt_mask,
        position_ids=positions,
        use_cache=True,
        logits_to_keep=1,
    )
    first = torch.log_softmax(out.logits[:, -1, :].float(), dim=-1).double()
    return prompt_mask, first, out.cache


@torch.no_grad()
def tree_logprobs(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    tree: CandidateTree,
    *,
    pad_id: int = 0,
) -> torch.Tensor:
    """``[len(prompts), n_candidates]`` float64: log P(candidate | prompt), summed over tokens."""
    device = model.device
    prompt_mask, first, cache = _prefix_pass(model, prompts, pad_id)
    total = first[:, list(tree.first)]
    if not tree.tokens:
        return total.cpu()
    batch, n_nodes = prompt_mask.shape[0], len(tree.tokens)
    dtype = model.dtype if model.dtype.is_floating_point else torch.float32
    visible = torch.cat(
        [
            prompt_mask.bool()[:, None, :].expand(batch, n_nodes, -1),
            tree.ancestor_mask().to(device)[None].expand(batch, -1, -1),
        ],
        dim=-1,
    )
    mask = torch.zeros(visible.shape, dtype=dtype, device=device)
    mask = mask.masked_fill(~visible, torch.finfo(dtype).min)[:, None]  # [B, 1, N, W + N]
    depths = torch.tensor(tree.depths, device=device)
    positions = prompt_mask.sum(-1, keepdim=True) + depths[None, :]
    inputs = torch.tensor(tree.tokens, device=device)[None].expand(batch, -1)
    logits = model(input_ids=inputs, attention_mask=mask, position_ids=positions, cache=cache)
    logits = logits.logits.float()  # [B, N, V]
    cand, node, token = (torch.tensor(c, device=device) for c in zip(*tree.steps, strict=True))
    picked = logits[:, node, token] - logits.logsumexp(-1)[:, node]  # [B, S]
    steps = torch.zeros_like(total).index_add_(1, cand, picked.double())
    return (total + steps).cpu()


@torch.no_grad()
def repeated_cache_logprobs(
    model: PreTrainedModel,
    prompts: Sequence[Sequence[int]],
    candidates: Sequence[Sequence[int]],
    *,
    pad_id: int = 0,
) -> torch.Tensor:
    """Same result as :func:`tree_logprobs`, with the prompt cache copied once per candidate.

    Memory and time grow with ``len(prompts) * len(candidates) * prompt length``.
    """
    device = model.device
    n_cand = len(candidates)
    prompt_mask, first, cache = _prefix_pass(model, prompts, pad_id)
    cand_ids, cand_mask = (t.to(device) for t in _right_pad(candidates, pad_id))
    total = first[:, cand_ids[:, 0]]
    if cand_ids.shape[1] == 1:
        return total.cpu()
    cache.batch_repeat_interleave(n_cand)  # type: ignore[attr-defined]
    batch = len(prompts)
    inputs = cand_ids[:, :-1].repeat(batch, 1)  # row b*K + k: prompt b, candidate k
    mask = torch.cat(
        [prompt_mask.repeat_interleave(n_cand, 0), cand_mask[:, :-1].repeat(batch, 1)], dim=1
    )
    lengths = prompt_mask.sum(-1).repeat_interleave(n_cand)
    cand_positions = lengths[:, None] + torch.arange(inputs.shape[1], device=device)
    logits = model(
        input_ids=inputs, attention_mask=mask, position_ids=cand_positions, cache=cache
    ).logits.float()
    targets = cand_ids[:, 1:].repeat(batch, 1)
    picked = logits.gather(-1, targets[..., None]).squeeze(-1) - logits.logsumexp(-1)
    real = cand_mask[:, 1:].repeat(batch, 1).bool()
    picked = torch.where(real, picked.double(), 0.0)
    return (total + picked.sum(-1).view(batch, n_cand)).cpu()
