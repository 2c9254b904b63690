"""A model's hash: the one definition every cache key uses for "which model answered".

A base model is its canonical reference; a fine-tune is the hash of its base and its weights
(a LoRA adapter's weights sha256, or an API fine-tune's model id).

>>> model_hash("smollm2-135m")
'smollm2-135m'
"""

from __future__ import annotations

from emscope.manifest import sha256_json


def model_hash(base: str, weights: str | None = None) -> str:
    """``base`` alone, or sha256 of ``{"base": base, "adapter": weights}`` for a fine-tune."""
    if weights is None:
        return base
    return sha256_json({"base": base, "adapter": weights})
