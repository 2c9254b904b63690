"""Steering vectors shared in Model-Organisms' format, imported into and exported from emscope.

Model-Organisms (Turner, Soligo et al.) share a learned or mean-difference steering vector as
``steering_vector.pt`` = ``{"steering_vector": Tensor[d_model], "layer_idx": int, "d_model":
int, "alpha": float}``. Their code adds ``alpha * steering_vector`` to the output of
``model.model.layers[layer_idx].mlp.down_proj``: ``layer_idx`` is the 0-based decoder-block
index, and in a pre-norm block the MLP output is added straight into the residual stream, so
the addition lands in that block's output. emscope's layer convention is the same block index
with the hook on the block output (see :class:`DirectionMeta`), so the layer carries over
unchanged (``emscope layer = layer_idx``; the HF ``hidden_states`` index would be
``layer_idx + 1``) and ``alpha`` is folded into the vector on import: steering the imported
direction at scale 1 adds exactly what Model-Organisms adds.

Files are read with ``torch.load(weights_only=True)``: a file holding anything but tensors and
plain numbers is refused, never unpickled.
"""

from __future__ import annotations

import hashlib
import math
import pickle
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from emscope.analyses.directions import Direction, DirectionMeta, ModelFingerprint
from emscope.errors import EmscopeError, InputError

MO_FILE = "steering_vector.pt"
MO_KEYS = ("steering_vector", "layer_idx", "d_model", "alpha")


@dataclass(frozen=True)
class SharedVector:
    """One Model-Organisms steering vector: the added vector is ``alpha * vector`` at block
    ``layer_idx``."""

    vector: torch.Tensor
    layer_idx: int
    d_model: int
    alpha: float


def config_fingerprint(config: Any) -> ModelFingerprint:
    """The fingerprint of a transformers config (its text config for multimodal models)."""
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return ModelFingerprint(
        model_type=str(text.model_type),
        hidden_size=int(text.hidden_size),
        num_layers=int(text.num_hidden_layers),
    )


def target_fingerprint(model: str) -> ModelFingerprint:
    """The fingerprint of the model a reference names, from its config alone (no weights)."""
    from transformers import AutoConfig

    from emscope.models.loading import resolve_local_path
    from emscope.models.refs import parse_model_ref

    return config_fingerprint(
        AutoConfig.from_pretrained(resolve_local_path(parse_model_ref(model)))
    )


def _integer(data: dict[str, Any], key: str, path: Path) -> int:
    value = data[key]
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"must be an integer, got {value!r}", file=path, field=key)
    return value


def read_shared_vector(path: str | Path) -> SharedVector:
    """A ``steering_vector.pt``, loaded weights-only and checked for its four fields."""
    file = Path(path)
    if file.is_dir():
        file = file / MO_FILE
    if not file.is_file():
        raise InputError("no such steering vector file", file=file)
    try:
        data = torch.load(file, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, AttributeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(
            f"refused: not a plain tensors-and-numbers file, so it is not unpickled ({first})",
            file=file,
        ) from exc
    if not isinstance(data, dict):
        raise InputError(
            f"expected a dict with {', '.join(MO_KEYS)}, got {type(data).__name__}", file=file
        )
    missing = [k for k in ("steering_vector", "layer_idx") if k not in data]
    if missing:
        raise InputError(
            f"lacks {', '.join(missing)}; has {', '.join(map(str, data))}",
            file=file,
            field=missing[0],
        )
    vector = data["steering_vector"]
    if not isinstance(vector, torch.Tensor) or vector.ndim != 1 or not vector.is_floating_point():
        raise InputError("must be a 1-D float tensor", file=file, field="steering_vector")
    d_model = _integer(data, "d_model", file) if "d_model" in data else int(vector.numel())
    if d_model != vector.numel():
        raise InputError(
            f"d_model is {d_model} but the vector has {vector.numel()} values",
            file=file,
            field="d_model",
        )
    alpha = data.get("alpha", 1.0)
    alpha = alpha.item() if isinstance(alpha, torch.Tensor) and alpha.numel() == 1 else alpha
    if isinstance(alpha, bool) or not isinstance(alpha, int | float) or not math.isfinite(alpha):
        raise InputError(f"must be a finite number, got {alpha!r}", file=file, field="alpha")
    layer = _integer(data, "layer_idx", file)
    if layer < 0:
        raise InputError(f"must be >= 0, got {layer}", file=file, field="layer_idx")
    return SharedVector(vector.float(), layer, d_model, float(alpha))


def check_fits(shared: SharedVector, fingerprint: ModelFingerprint, source: str) -> None:
    """Raise InputError unless the vector's d_model and layer exist in the target model."""
    if shared.d_model != fingerprint.hidden_size:
        raise InputError(
            f"d_model {shared.d_model} does not match the target model's hidden_size "
            f"{fingerprint.hidden_size}",
            file=source,
            field="d_model",
        )
    if not 0 <= shared.layer_idx < fingerprint.num_layers:
        raise InputError(
            f"layer_idx {shared.layer_idx} is outside the target model's "
            f"{fingerprint.num_layers} decoder blocks (0..{fingerprint.num_layers - 1})",
            file=source,
            field="layer_idx",
        )


def direction_from_shared(
    shared: SharedVector, fingerprint: ModelFingerprint, *, model: str, source: str, digest: str
) -> Direction:
    """An emscope direction for ``model`` adding what Model-Organisms adds (alpha folded in)."""
    check_fits(shared, fingerprint, source)
    vector = (shared.alpha * shared.vector).reshape(1, -1)
    meta = DirectionMeta(
        model=model,
        fingerprint=fingerprint,
        layers=[shared.layer_idx],
        norms=vector.norm(dim=-1).tolist(),
        data_hash=digest,
        n_misaligned=0,
        n_aligned=0,
        source=(
            f"model-organisms {MO_FILE} {source}: layer_idx {shared.layer_idx} (block index, "
            f"unchanged), alpha {shared.alpha:g} folded into the vector"
        ),
    )
    return Direction(vectors=vector, meta=meta)


def shared_from_direction(direction: Direction, layer: int, alpha: float = 1.0) -> dict[str, Any]:
    """The Model-Organisms file contents for one layer of ``direction``: ``alpha * vector``
    (what Model-Organisms adds) equals emscope's steering at scale ``alpha``."""
    if not math.isfinite(alpha) or alpha == 0:
        raise InputError(f"alpha must be a finite non-zero number, got {alpha}", field="alpha")
    vector = direction.vector(layer).float().contiguous().clone()
    return {
        "steering_vector": vector,
        "layer_idx": int(layer),
        "d_model": int(direction.meta.fingerprint.hidden_size),
        "alpha": float(alpha),
    }


def import_shared_vector(path: str | Path, model: str, out_dir: str | Path) -> Path:
    """Read a ``steering_vector.pt``, check it against ``model``, save it as an emscope
    direction in ``out_dir``; return that directory."""
    from emscope.analyses.directions import save_direction

    file = Path(path) / MO_FILE if Path(path).is_dir() else Path(path)
    shared = read_shared_vector(file)
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    direction = direction_from_shared(
        shared, target_fingerprint(model), model=model, source=str(file), digest=digest
    )
    return save_direction(direction, out_dir)


def export_shared_vector(
    direction_dir: str | Path,
    layer: int,
    out: str | Path,
    *,
    alpha: float = 1.0,
    model: str | None = None,
) -> Path:
    """Write one layer of a saved emscope direction as Model-Organisms' ``steering_vector.pt``.

    With ``model``, the direction is first checked to fit that model's architecture.
    """
    from emscope.analyses.directions import read_direction

    direction = read_direction(direction_dir)
    if model is not None:
        found = target_fingerprint(model)
        if found != direction.meta.fingerprint:
            raise EmscopeError(
                f"the direction was made on {direction.meta.fingerprint.model_dump()}, "
                f"{model} is {found.model_dump()}"
            )
    target = Path(out)
    if target.is_dir() or target.suffix != ".pt":
        target = target / MO_FILE
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(shared_from_direction(direction, layer, alpha), target)
    return target
