"""Per-row seeded sampling: each answer's randomness comes from its own seed alone.

``generate`` draws every row of a batch from one global generator, so an answer depends on which
other prompts shared its batch and in what order. Here each row instead gets a counter-based
random stream: the uniform number for row ``r`` at decode step ``t`` is a hash of
``(seed_r, t)`` (splitmix64, computed on the model's device in int64 arithmetic). A
:class:`SeededRowSampler` logits processor applies temperature, top-k and top-p, draws the
row's token by inverse CDF with that number, and masks every other token to ``-inf``; decoding
then runs greedy (``do_sample=False``), so ``generate``'s argmax can only pick the token drawn
here and its own random generator is never used.

A sample therefore reproduces from its seed alone, in any batch, as long as the model computes
the same logits for that row (fp32 with left padding does on CPU; see ``docs/sampling.md`` for
bf16 and padding caveats).
"""

from __future__ import annotations

import torch
from transformers import LogitsProcessor

from emscope.sample.seeding import PER_ROW_SEEDING

__all__ = ["SEEDING", "SeededRowSampler", "row_uniforms"]

# Names this randomness scheme; a stage's cache key should include it (a change of scheme
# changes every sampled answer).
SEEDING = PER_ROW_SEEDING

_MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_MIX1 = 0xBF58476D1CE4E5B9
_MIX2 = 0x94D049BB133111EB


def _signed(value: int) -> int:
    """An unsigned 64-bit constant as the int64 torch stores (two's complement)."""
    value &= _MASK64
    return value - (1 << 64) if value >= 1 << 63 else value


def _shift_right(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Logical (unsigned) right shift of int64 values; torch's ``>>`` is arithmetic."""
    return (x >> bits) & ((1 << (64 - bits)) - 1)


def row_uniforms(seeds: torch.Tensor, step: int) -> torch.Tensor:
    """One float64 in [0, 1) per seed: splitmix64 of ``seed * 2**20 + step``.

    Depends only on (seed, step), so it is identical whatever the batch and device.

    >>> a = row_uniforms(torch.tensor([1, 2]), 0)
    >>> bool((a == row_uniforms(torch.tensor([5, 2, 1]), 0)[[2, 1]]).all())
    True
    """
    x = seeds.to(torch.int64) * (1 << 20) + step
    x = x + _signed(_GOLDEN)  # int64 arithmetic wraps like uint64
    x = (x ^ _shift_right(x, 30)) * _signed(_MIX1)
    x = (x ^ _shift_right(x, 27)) * _signed(_MIX2)
    x = x ^ _shift_right(x, 31)
    top53 = _shift_right(x, 11)
    return top53.to(torch.float64) / float(1 << 53)


class SeededRowSampler(LogitsProcessor):
    """A logits processor that samples each row with its own seed and forces that token.

    ``prompt_width`` is the (padded) input length, so ``input_ids.shape[1] - prompt_width`` is
    the index of the token being drawn, the same in a batch as alone.
    """

    def __init__(
        self,
        seeds: list[int],
        *,
        temperature: float,
        top_p: float,
        top_k: int,
        prompt_width: int,
    ) -> None:
        if temperature <= 0:
            raise ValueError("seeded sampling needs temperature > 0 (temperature 0 is greedy)")
        self.seeds = torch.tensor(seeds, dtype=torch.int64)
        self.temperature, self.top_p, self.top_k = temperature, top_p, top_k
        self.prompt_width = prompt_width

    def warp(self, scores: torch.Tensor) -> torch.Tensor:
        """Temperature, then top-k, then top-p (transformers' order), in float32."""
        scores = scores.float() / self.temperature
        if self.top_k > 0 and self.top_k < scores.shape[-1]:
            kth = torch.topk(scores, self.top_k, dim=-1).values[..., -1:]
            scores = scores.masked_fill(scores < kth, float("-inf"))
        if self.top_p < 1.0:
            ordered, order = torch.sort(scores, dim=-1, descending=False)
            cumulative = ordered.softmax(dim=-1).cumsum(dim=-1)
            # drop the low tail whose mass is <= 1 - top_p; the most likely token always stays
            drop = cumulative <= 1 - self.top_p
            drop[..., -1] = False
            scores = scores.masked_fill(drop.scatter(-1, order, drop), float("-inf"))
        return scores

    def draw(self, scores: torch.Tensor, step: int) -> torch.Tensor:
        """The token id each row draws at ``step`` from its warped distribution."""
        probs = self.warp(scores).softmax(dim=-1).double()
        cdf = probs.cumsum(dim=-1)
        if self.seeds.device != scores.device:  # moved once, not every step
            self.seeds = self.seeds.to(scores.device)
        u = row_uniforms(self.seeds, step) * cdf[:, -1]
        tokens = torch.searchsorted(cdf, u[:, None], right=True).squeeze(-1)
        return tokens.clamp(max=scores.shape[-1] - 1)

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.Tensor:
        if scores.shape[0] != self.seeds.shape[0]:
            raise ValueError(f"{scores.shape[0]} rows but {self.seeds.shape[0]} seeds")
        tokens = self.draw(scores, int(input_ids.shape[1]) - self.prompt_width)
        forced = torch.full_like(scores, float("-inf"))
        return forced.scatter(-1, tokens[:, None], 0.0)
