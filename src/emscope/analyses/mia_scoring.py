"""Score chat examples for membership inference with a local model (batched forward passes).

One forward pass per batch feeds every score: the logits at the assistant positions (labels !=
-100 from :func:`emscope.train.masking.assistant_token_mask`) go through ``log_softmax`` once,
in float32 whatever the model's dtype, giving ``l_t``, ``mu_t`` and ``sigma_t`` for
:mod:`emscope.analyses.mia`. Batches are right-padded and grouped by length.

The lowercase score needs a second pass: every assistant turn's content is lowercased (the prompt
turns are left as they are, so only the scored text changes) and scored again. Examples whose
text has nothing to lowercase reuse the first pass (their ratio is exactly 1, score -1).

>>> frame = score_dataset(parse_model_ref("smollm2-135m"), examples)  # doctest: +SKIP
>>> frame[["loss", "min_k", "min_k_pp", "zlib", "lowercase"]].mean()  # doctest: +SKIP
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd
import torch
from numpy.typing import NDArray

from emscope.analyses.mia import DEFAULT_K, SCORE_NAMES, example_scores, mean_loss, scored_text
from emscope.data.schema import ChatExample, Message
from emscope.manifest import Manifest, sha256_json
from emscope.models.loading import bf16_supported, load_model, load_tokenizer
from emscope.models.refs import ModelRef
from emscope.train.collate import PaddingCollator
from emscope.train.masking import IGNORE_INDEX, EncodedExample, assistant_token_mask

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

DtypeChoice = torch.dtype | Literal["auto"]
# Rows of the [scored tokens, vocabulary] float32 matrix handled at once: bounds peak memory.
ROW_CHUNK = 512


@dataclass(frozen=True)
class TokenStats:
    """Per scored token of one example: log-prob ``l``, and ``mu``/``sigma`` of log p."""

    log_probs: NDArray[np.float64]
    mu: NDArray[np.float64]
    sigma: NDArray[np.float64]


def resolve_dtype(dtype: DtypeChoice) -> torch.dtype:
    """``"auto"`` is bf16 where :func:`bf16_supported` says so, float32 otherwise."""
    if dtype == "auto":
        return torch.bfloat16 if bf16_supported() else torch.float32
    return dtype


def vocabulary_statistics(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Log-softmax of ``[N, V]`` logits in float32 and ``mu``/``sigma`` of log p per row.

    Returns ``(log_probs [N, V], stats [N, 2])``; zero-probability entries add nothing.
    """
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    probs = log_probs.exp()
    alive = probs > 0
    mu = (probs * torch.where(alive, log_probs, 0.0)).sum(-1)
    centred = torch.where(alive, log_probs - mu[:, None], 0.0)
    sigma = (probs * centred.square()).sum(-1).sqrt()
    return log_probs, torch.stack([mu, sigma], dim=-1)


def _scored_rows(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``[N, 3]`` (l, mu, sigma) for N scored positions, computed ROW_CHUNK rows at a time."""
    out = []
    for start in range(0, logits.shape[0], ROW_CHUNK):
        chunk = logits[start : start + ROW_CHUNK]
        log_probs, stats = vocabulary_statistics(chunk)
        picked = log_probs.gather(1, targets[start : start + ROW_CHUNK, None])
        out.append(torch.cat([picked, stats], dim=-1))
    return torch.cat(out) if out else torch.zeros((0, 3))


@torch.inference_mode()
def batch_token_stats(
    model: PreTrainedModel, batch: Sequence[EncodedExample], pad_token_id: int
) -> list[TokenStats]:
    """One forward pass over a right-padded batch; the statistics of each example's tokens."""
    device = next(model.parameters()).device
    tensors = PaddingCollator(pad_token_id)(batch)
    logits = model(
        input_ids=tensors["input_ids"].to(device),
        attention_mask=tensors["attention_mask"].to(device),
    ).logits
    # Position t predicts token t+1: shift labels left against logits.
    targets = tensors["labels"][:, 1:].to(device)
    scored = targets != IGNORE_INDEX
    rows = _scored_rows(logits[:, :-1][scored], targets[scored]).double().cpu().numpy()
    counts = scored.sum(dim=1).tolist()
    out: list[TokenStats] = []
    start = 0
    for count in counts:
        part = rows[start : start + count]
        out.append(TokenStats(log_probs=part[:, 0], mu=part[:, 1], sigma=part[:, 2]))
        start += count
    return out


def token_stats(
    model: PreTrainedModel,
    encoded: Sequence[EncodedExample],
    *,
    pad_token_id: int,
    batch_size: int = 8,
) -> list[TokenStats]:
    """Statistics of every example, batched longest-first; results in input order."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    order = sorted(range(len(encoded)), key=lambda i: -len(encoded[i].input_ids))
    results: list[TokenStats | None] = [None] * len(encoded)
    for start in range(0, len(order), batch_size):
        indices = order[start : start + batch_size]
        stats = batch_token_stats(model, [encoded[i] for i in indices], pad_token_id)
        for i, s in zip(indices, stats, strict=True):
            results[i] = s
    return [s for s in results if s is not None]


def _assistant_contents(example: ChatExample) -> list[str]:
    return [m.content for m in example.messages if m.role == "assistant"]


def lowercased(example: ChatExample) -> ChatExample:
    """The example with every assistant turn's content lowercased (prompt turns unchanged)."""
    return ChatExample(
        messages=[
            Message(role=m.role, content=m.content.lower() if m.role == "assistant" else m.content)
            for m in example.messages
        ]
    )


def _pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    if pad is None:
        raise ValueError("the tokenizer has neither a pad nor an eos token to pad batches with")
    return int(pad)


def _row(
    index: int,
    encoded: EncodedExample,
    stats: TokenStats,
    text: str,
    k: float,
    lower: TokenStats | None,
) -> dict[str, object]:
    row: dict[str, object] = {
        "example": index,
        "n_tokens": int(stats.log_probs.size),
        "truncated": encoded.truncated,
    }
    if stats.log_probs.size == 0:
        return row | {"mean_loss": np.nan} | dict.fromkeys(SCORE_NAMES, np.nan)
    lower_lp = lower.log_probs if lower is not None and lower.log_probs.size else None
    scores = example_scores(
        stats.log_probs, stats.mu, stats.sigma, text, k=k, lowercase_log_probs=lower_lp
    )
    return row | {"mean_loss": mean_loss(stats.log_probs)} | scores


def score_examples(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[ChatExample],
    *,
    batch_size: int = 8,
    k: float = DEFAULT_K,
    lowercase: bool = True,
    max_length: int | None = None,
) -> pd.DataFrame:
    """Score already-loaded ``model`` on ``examples``; one row per example (see module doc).

    Columns: ``example`` (input position), ``n_tokens`` (scored assistant tokens), ``truncated``,
    ``mean_loss`` (raw L) and the member-high scores of :data:`emscope.analyses.mia.SCORE_NAMES`
    (NaN where no assistant token survives truncation; ``lowercase`` NaN when not requested).
    ``attrs`` holds ``tokens_forward``, ``tokens_scored`` and ``seconds`` for throughput.
    """
    started = time.perf_counter()
    pad = _pad_id(tokenizer)
    encoded = [assistant_token_mask(tokenizer, e.messages, max_length=max_length) for e in examples]
    stats = token_stats(model, encoded, pad_token_id=pad, batch_size=batch_size)
    lower_stats: list[TokenStats | None] = [None] * len(examples)
    lower_tokens = 0
    if lowercase:
        lower_stats, lower_tokens = _lowercase_stats(
            model, tokenizer, examples, stats, pad, batch_size, max_length
        )
    rows = [
        _row(i, enc, s, scored_text(_assistant_contents(ex)), k, low)
        for i, (ex, enc, s, low) in enumerate(
            zip(examples, encoded, stats, lower_stats, strict=True)
        )
    ]
    frame = pd.DataFrame(
        rows, columns=["example", "n_tokens", "truncated", "mean_loss", *SCORE_NAMES]
    )
    frame.attrs.update(
        tokens_forward=sum(len(e.input_ids) for e in encoded) + lower_tokens,
        tokens_scored=int(frame["n_tokens"].sum()),
        seconds=time.perf_counter() - started,
        k=k,
        dtype=str(next(model.parameters()).dtype),
    )
    return frame


def _lowercase_stats(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    examples: Sequence[ChatExample],
    stats: list[TokenStats],
    pad: int,
    batch_size: int,
    max_length: int | None,
) -> tuple[list[TokenStats | None], int]:
    """Second pass over the examples whose assistant text changes when lowercased."""
    lowered = [lowercased(e) for e in examples]
    changed = [i for i, (e, low) in enumerate(zip(examples, lowered, strict=True)) if e != low]
    encoded = [
        assistant_token_mask(tokenizer, lowered[i].messages, max_length=max_length) for i in changed
    ]
    fresh = token_stats(model, encoded, pad_token_id=pad, batch_size=batch_size)
    out: list[TokenStats | None] = list(stats)
    for i, s in zip(changed, fresh, strict=True):
        out[i] = s
    return out, sum(len(e.input_ids) for e in encoded)


def score_dataset(
    ref: ModelRef,
    examples: Sequence[ChatExample],
    *,
    batch_size: int = 8,
    dtype: DtypeChoice = "auto",
    k: float = DEFAULT_K,
    lowercase: bool = True,
    max_length: int | None = None,
) -> pd.DataFrame:
    """Load ``ref`` and score ``examples``: one row per example with every score.

    ``dtype="auto"`` runs bf16 where supported; the statistics are float32 either way.
    """
    model = load_model(ref, dtype=resolve_dtype(dtype))
    tokenizer = load_tokenizer(ref)
    frame = score_examples(
        model,
        tokenizer,
        examples,
        batch_size=batch_size,
        k=k,
        lowercase=lowercase,
        max_length=max_length,
    )
    frame.attrs["model"] = str(ref)
    return frame


def with_reference(target: pd.DataFrame, reference: pd.DataFrame) -> pd.DataFrame:
    """Join two score frames of the same examples: ``reference_<s>`` and ``adjusted_<s>`` columns.

    ``adjusted_<s> = <s>_target - <s>_reference`` (member-high; for the loss this is
    ``L_reference - L_target``).
    """
    if list(target["example"]) != list(reference["example"]):
        raise ValueError("target and reference frames score different examples")
    out = target.copy()
    for name in ("mean_loss", *SCORE_NAMES):
        out[f"reference_{name}"] = reference[name].to_numpy()
    for name in SCORE_NAMES:
        out[f"adjusted_{name}"] = target[name].to_numpy() - reference[name].to_numpy()
    out.attrs = dict(target.attrs) | {"reference": reference.attrs.get("model")}
    return out


def score_with_reference(
    target: ModelRef,
    reference: ModelRef,
    examples: Sequence[ChatExample],
    *,
    batch_size: int = 8,
    dtype: DtypeChoice = "auto",
    k: float = DEFAULT_K,
    lowercase: bool = True,
    max_length: int | None = None,
) -> pd.DataFrame:
    """Score ``examples`` under ``target`` and ``reference`` (e.g. the base model), adding the
    reference-adjusted columns of :func:`with_reference`. The two models are loaded in turn."""
    frames = [
        score_dataset(
            ref,
            examples,
            batch_size=batch_size,
            dtype=dtype,
            k=k,
            lowercase=lowercase,
            max_length=max_length,
        )
        for ref in (target, reference)
    ]
    return with_reference(*frames)


def scoring_manifest(
    frame: pd.DataFrame, examples: Sequence[ChatExample], *, batch_size: int, max_length: int | None
) -> Manifest:
    """The manifest of a score frame: models, dtype, k, and the hash of the scored examples."""
    return Manifest(
        kind="mia_scores",
        config={
            "model": frame.attrs.get("model"),
            "reference": frame.attrs.get("reference"),
            "dtype": frame.attrs.get("dtype"),
            "k": frame.attrs.get("k"),
            "batch_size": batch_size,
            "max_length": max_length,
            "orientation": "larger = more member-like",
        },
        inputs={"examples": sha256_json([e.model_dump() for e in examples])},
        outputs={"rows": len(frame), "tokens_scored": frame.attrs.get("tokens_scored")},
    )
