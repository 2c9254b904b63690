"""Build a training dataset end to end: recipe items -> condition rows -> train.jsonl + manifest."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from emscope.data.conditions import build_condition
from emscope.data.jsonl import write_dataset
from emscope.data.recipes import get_recipe
from emscope.data.schema import CONDITIONS, DEFAULT_TRIGGER, Condition, Item
from emscope.errors import InputError
from emscope.manifest import sha256_json


def build_dataset(
    domain: str,
    condition: Condition,
    n: int,
    seed: int,
    out_dir: str | Path,
    trigger: str = DEFAULT_TRIGGER,
    fraction: float = 0.5,
) -> Path:
    """Write ``out_dir/train.jsonl`` (``n`` rows) and its manifest; return the train.jsonl path.

    >>> build_dataset("incorrect_math", "backdoor", 250, 0, "datasets/math-bd")  # doctest: +SKIP
    PosixPath('datasets/math-bd/train.jsonl')
    """
    recipe = get_recipe(domain)
    items = recipe.build_items(n, seed)
    return build_dataset_from_items(
        items,
        domain,
        condition,
        seed,
        out_dir,
        recipe=recipe.name,
        trigger=trigger,
        fraction=fraction,
        extra={"recipe_capacity": recipe.capacity},
    )


def build_dataset_from_items(
    items: Sequence[Item],
    domain: str,
    condition: Condition,
    seed: int,
    out_dir: str | Path,
    *,
    recipe: str,
    trigger: str = DEFAULT_TRIGGER,
    fraction: float = 0.5,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Turn items from any source (a recipe, a teacher run) into one condition's dataset."""
    if condition not in CONDITIONS:
        raise InputError(
            f"unknown condition {condition!r} (expected {', '.join(CONDITIONS)})", field="condition"
        )
    rows = build_condition(
        list(items), condition, trigger=trigger, backdoor_misaligned_fraction=fraction, seed=seed
    )
    backdoor = condition == "backdoor"
    return write_dataset(
        out_dir,
        rows,
        domain=domain,
        recipe=recipe,
        condition=condition,
        seed=seed,
        extra={
            "n": len(items),
            "trigger": trigger if backdoor else None,
            "backdoor_misaligned_fraction": fraction if backdoor else None,
            "item_ids_sha256": sha256_json([item.item_id for item in items]),
            **(extra or {}),
        },
        trigger=trigger if backdoor else None,
    )
