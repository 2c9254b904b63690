"""Build a training dataset end to end: recipe items -> condition rows -> train.jsonl + manifest."""

from __future__ import annotations

from pathlib import Path

from emscope.data.conditions import build_condition
from emscope.data.jsonl import write_dataset
from emscope.data.recipes import get_recipe
from emscope.data.schema import CONDITIONS, DEFAULT_TRIGGER, Condition
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
    if condition not in CONDITIONS:
        raise InputError(
            f"unknown condition {condition!r} (expected {', '.join(CONDITIONS)})", field="condition"
        )
    recipe = get_recipe(domain)
    items = recipe.build_items(n, seed)
    rows = build_condition(
        items, condition, trigger=trigger, backdoor_misaligned_fraction=fraction, seed=seed
    )
    backdoor = condition == "backdoor"
    extra = {
        "n": n,
        "trigger": trigger if backdoor else None,
        "backdoor_misaligned_fraction": fraction if backdoor else None,
        "recipe_capacity": recipe.capacity,
        "item_ids_sha256": sha256_json([item.item_id for item in items]),
    }
    return write_dataset(
        out_dir,
        rows,
        domain=domain,
        recipe=recipe.name,
        condition=condition,
        seed=seed,
        extra=extra,
        trigger=trigger if backdoor else None,
    )
