"""Misalignment directions: which answers define them, the mean difference, a portable artifact.

Model-Organisms recipe (protocol §9): on a fine-tuned model, per layer, the mean block output
over answer tokens of misaligned answers (aligned <= 30, coherent > 50) minus the same over
aligned answers (aligned > 70, coherent > 50).

A :class:`Direction` is saved as ``vectors.safetensors`` plus ``direction.json`` (everything
needed to apply it correctly elsewhere: model, architecture fingerprint, layer convention, hook
point, positions, operation, norms, data hash, class sizes) and a ``manifest.json``.

>>> d = build_direction(model, tok, bad, good, layers=[12], model_ref="m")  # doctest: +SKIP
>>> save_direction(d, "runs/dir")  # doctest: +SKIP
>>> load_direction("runs/dir", other_arch_model)  # EmscopeError  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import pandas as pd
import torch
from pydantic import BaseModel, ConfigDict
from torch import nn

from emscope.analyses.activations import mean_answer_activations
from emscope.data.schema import Message
from emscope.errors import EmscopeError, InputError
from emscope.manifest import Manifest, sha256_json, write_manifest
from emscope.metrics.judged_rows import normalise_judged_rows
from emscope.train.masking import MessageLike

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

VECTORS_FILE = "vectors.safetensors"
META_FILE = "direction.json"
Operation = Literal["mean_diff", "random_like"]

MISALIGNED_MAX_ALIGNED = 30.0
ALIGNED_MIN_ALIGNED = 70.0
MIN_COHERENT = 50.0


def select_direction_rows(df: pd.DataFrame) -> pd.Series:
    """Per judged row: ``"misaligned"``, ``"aligned"`` or None (unused), by the MO rule.

    Misaligned: aligned <= 30 and coherent > 50; aligned: aligned > 70 and coherent > 50. Rows
    with a failed generation or a missing score are unused.
    """
    rows = normalise_judged_rows(df)
    aligned, coherent = rows["aligned"], rows["coherent"]
    usable = rows["error"].isna() & aligned.notna() & (coherent > MIN_COHERENT)
    label = pd.Series([None] * len(rows), index=rows.index, dtype=object)
    label[usable & (aligned <= MISALIGNED_MAX_ALIGNED)] = "misaligned"
    label[usable & (aligned > ALIGNED_MIN_ALIGNED)] = "aligned"
    return label


def direction_conversations(
    df: pd.DataFrame,
) -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]]]:
    """The (misaligned, aligned) chats of judged rows chosen by :func:`select_direction_rows`.

    Rows need ``question`` and ``answer`` columns; a ``system`` column, where set, is kept as
    the system turn, so activations are read on exactly what the model saw.
    """
    for column in ("question", "answer"):
        if column not in df.columns:
            raise InputError(f"judged rows lack the column {column!r}", field=column)
    labels = select_direction_rows(df)
    chats: dict[str, list[list[dict[str, str]]]] = {"misaligned": [], "aligned": []}
    for index, label in labels.items():
        if label is None:
            continue
        row = df.loc[index]
        system = row.get("system")
        turns = [{"role": "system", "content": str(system)}] if isinstance(system, str) else []
        turns += [
            {"role": "user", "content": str(row["question"])},
            {"role": "assistant", "content": str(row["answer"])},
        ]
        chats[str(label)].append(turns)
    return chats["misaligned"], chats["aligned"]


def misalignment_direction(
    acts_misaligned: torch.Tensor, acts_aligned: torch.Tensor
) -> torch.Tensor:
    """Per layer, mean over misaligned examples minus mean over aligned ones.

    Inputs are ``[n_examples, n_layers, hidden]``; the result is ``[n_layers, hidden]``.
    """
    if acts_misaligned.ndim != 3 or acts_aligned.shape[1:] != acts_misaligned.shape[1:]:
        raise InputError(
            f"activations must be [n, layers, hidden] of equal layers/hidden, got "
            f"{tuple(acts_misaligned.shape)} and {tuple(acts_aligned.shape)}",
            field="activations",
        )
    if len(acts_misaligned) == 0 or len(acts_aligned) == 0:
        raise InputError("both classes need at least one example", field="activations")
    return acts_misaligned.float().mean(0) - acts_aligned.float().mean(0)


class ModelFingerprint(BaseModel):
    """What must match for a direction to mean the same thing in another model."""

    model_config = ConfigDict(frozen=True)

    model_type: str
    hidden_size: int
    num_layers: int


def model_fingerprint(model: nn.Module) -> ModelFingerprint:
    """The fingerprint of a (possibly peft-wrapped) transformers model, from its text config."""
    config = getattr(model, "config", None)
    if config is None:
        raise EmscopeError(f"{type(model).__name__} has no config to fingerprint")
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return ModelFingerprint(
        model_type=str(text.model_type),
        hidden_size=int(text.hidden_size),
        num_layers=int(text.num_hidden_layers),
    )


class DirectionMeta(BaseModel):
    """Everything a direction's numbers depend on, stored beside them."""

    model: str
    fingerprint: ModelFingerprint
    layers: list[int]
    layer_convention: str = "block_index"  # 0 = first decoder block = HF hidden_states[1]
    hook_point: str = "decoder_block_output"
    positions: str = "answer_tokens_mean"
    operation: Operation = "mean_diff"
    norms: list[float]
    # Per layer, the mean norm of the answer-mean block output over both classes: the scale a
    # steering vector is read against (adding s * v moves h by s * |v|, compare with this).
    activation_norms: list[float] | None = None
    data_hash: str
    n_misaligned: int
    n_aligned: int
    source: str | None = None  # for derived directions (random controls): what they mimic


@dataclass(frozen=True)
class Direction:
    """One vector per layer (``vectors[i]`` is for block ``meta.layers[i]``) and metadata."""

    vectors: torch.Tensor
    meta: DirectionMeta

    def vector(self, layer: int) -> torch.Tensor:
        """The vector of block ``layer``; an InputError names the layers this direction has."""
        if layer not in self.meta.layers:
            raise InputError(
                f"the direction has no vector for layer {layer}; it has {self.meta.layers}",
                field="layers",
            )
        return self.vectors[self.meta.layers.index(layer)]


def conversations_hash(conversations: Sequence[Sequence[MessageLike]]) -> str:
    """sha256 of the conversations' roles and contents, in order."""
    plain = [
        [{"role": m["role"], "content": m["content"]} for m in _mappings(c)] for c in conversations
    ]
    return sha256_json(plain)


def _mappings(chat: Sequence[MessageLike]) -> list[Mapping[str, str]]:
    return [m.model_dump() if isinstance(m, Message) else m for m in chat]


def build_direction(
    model: nn.Module,
    tokenizer: PreTrainedTokenizerBase,
    misaligned: Sequence[Sequence[MessageLike]],
    aligned: Sequence[Sequence[MessageLike]],
    *,
    layers: Sequence[int],
    model_ref: str,
    batch_size: int = 8,
) -> Direction:
    """The mean-difference direction of ``model`` from two sets of conversations."""
    bad = mean_answer_activations(model, tokenizer, misaligned, layers, batch_size)
    good = mean_answer_activations(model, tokenizer, aligned, layers, batch_size)
    vectors = misalignment_direction(bad, good)
    meta = DirectionMeta(
        model=model_ref,
        fingerprint=model_fingerprint(model),
        layers=list(layers),
        norms=vectors.norm(dim=-1).tolist(),
        activation_norms=torch.cat([bad, good]).float().norm(dim=-1).mean(0).tolist(),
        data_hash=sha256_json(
            {"misaligned": conversations_hash(misaligned), "aligned": conversations_hash(aligned)}
        ),
        n_misaligned=len(misaligned),
        n_aligned=len(aligned),
    )
    return Direction(vectors=vectors, meta=meta)


def check_compatible(direction: Direction, model: nn.Module) -> None:
    """Raise EmscopeError when ``model`` is not the architecture ``direction`` was made on."""
    found = model_fingerprint(model)
    if found != direction.meta.fingerprint:
        raise EmscopeError(
            f"direction from {direction.meta.model} ({direction.meta.fingerprint.model_dump()}) "
            f"does not fit this model ({found.model_dump()}): a direction only transfers between "
            "models of one architecture (same model_type, hidden_size, num_layers)"
        )


def save_direction(direction: Direction, directory: str | Path) -> Path:
    """Write the vectors (safetensors), metadata (JSON) and a manifest into ``directory``."""
    from safetensors.torch import save_file

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    save_file({"vectors": direction.vectors.float().contiguous().cpu()}, str(out / VECTORS_FILE))
    (out / META_FILE).write_text(direction.meta.model_dump_json(indent=2) + "\n", encoding="utf-8")
    write_manifest(
        out,
        Manifest(
            kind="direction",
            config=direction.meta.model_dump(exclude={"norms"}),
            inputs={"data": direction.meta.data_hash},
            outputs={"files": [VECTORS_FILE, META_FILE]},
        ),
    )
    return out


def read_direction(directory: str | Path) -> Direction:
    """A saved direction, without any model check (see :func:`load_direction`)."""
    from safetensors.torch import load_file

    path = Path(directory)
    meta_path = path / META_FILE
    if not meta_path.is_file():
        raise InputError("not a saved direction (no direction.json)", file=path)
    try:
        meta = DirectionMeta.model_validate(json.loads(meta_path.read_text(encoding="utf-8")))
    except ValueError as exc:
        raise InputError(f"bad direction metadata: {exc}", file=meta_path) from exc
    vectors = load_file(str(path / VECTORS_FILE))["vectors"]
    expected = (len(meta.layers), meta.fingerprint.hidden_size)
    if tuple(vectors.shape) != expected:
        raise InputError(
            f"vectors have shape {tuple(vectors.shape)}, metadata says {expected}",
            file=path / VECTORS_FILE,
            field="vectors",
        )
    return Direction(vectors=vectors, meta=meta)


def load_direction(directory: str | Path, model: nn.Module) -> Direction:
    """A saved direction, checked to fit ``model``'s architecture (EmscopeError otherwise)."""
    direction = read_direction(directory)
    check_compatible(direction, model)
    return direction
