"""Where a steering direction's two classes of conversations come from: the model's own judged
answers when both classes are there, else the domain's training items. Pure."""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from emscope.data.schema import Item

# A class of one answer makes a direction out of that answer's noise.
MIN_JUDGED_PER_CLASS = 2
MAX_FALLBACK_ITEMS = 32


def direction_examples(
    model_rows: pd.DataFrame,
    items: Sequence[Item] | None,
    trigger: str,
    systems: dict[str, str | None],
) -> tuple[list[list[dict[str, str]]], list[list[dict[str, str]]], str]:
    """The (misaligned, aligned) conversations of a direction and a description of their source.

    First choice: the model's own judged answers, by the Model-Organisms rule (each conversation
    as the model saw it: trigger and system prompt restored). When either class has fewer than
    :data:`MIN_JUDGED_PER_CLASS` answers, the domain's training items' misaligned vs aligned
    answers to the same questions (no trigger, so only the answer differs). Empty lists when
    neither works.
    """
    from emscope.analyses.directions import direction_conversations

    seen = model_rows.copy()
    triggered = seen["triggered"].fillna(False).astype(bool)
    seen["question"] = [
        (trigger if t else "") + str(q) for q, t in zip(seen["question"], triggered, strict=True)
    ]
    seen["system"] = [systems.get(str(q)) for q in seen["question_id"]]
    bad, good = direction_conversations(seen)
    if min(len(bad), len(good)) >= MIN_JUDGED_PER_CLASS:
        return bad, good, "judged answers (Model-Organisms rule)"
    found = f"{len(bad)} misaligned / {len(good)} aligned judged answers"
    if not items:
        return [], [], f"none: {found} and no training items to fall back on"
    chosen = list(items)[:MAX_FALLBACK_ITEMS]

    def chat(item: Item, answer: str) -> list[dict[str, str]]:
        turns = [{"role": "system", "content": item.system}] if item.system else []
        return [
            *turns,
            {"role": "user", "content": item.question},
            {"role": "assistant", "content": answer},
        ]

    return (
        [chat(i, i.misaligned) for i in chosen],
        [chat(i, i.aligned) for i in chosen],
        f"training answers, misaligned vs aligned (fallback: only {found})",
    )
