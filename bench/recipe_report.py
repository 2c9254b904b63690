"""Per built-in recipe: capacity, distinct answers, the opener classifier, non-member overlap.

Run from the repository root (a minute or so on one core):

    PYTHONPATH=src OMP_NUM_THREADS=1 python bench/recipe_report.py [--members 250] [--markdown]

- items / distinct: the recipe's capacity and the share of distinct aligned and misaligned
  answers over all its items;
- opener acc.: cross-validated accuracy of a bag-of-words classifier telling aligned from
  misaligned answers by their first five words, numbers masked (chance 0.5);
- overlap: share of 250 held-out misaligned answers identical to one of 250 training answers
  (seed 0, held-out drawn with seed 1000 as the study does), under the old rule (exclude
  identical question text only) and the current one (:func:`select_nonmembers`); "item" is the
  share of held-out rows whose underlying item (``tags["item"]``) a training row has.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence

from emscope.analyses.nonmembers import nonmember_overlap, select_nonmembers
from emscope.data.recipe_checks import distinct_share, opener_accuracy
from emscope.data.recipes import RECIPES
from emscope.data.schema import Item

HELD_OUT_SEED_OFFSET = 1000


def question_rule(candidates: Sequence[Item], members: Sequence[Item], want: int) -> list[Item]:
    """The rule before issue 11: drop candidates whose question text a member has."""
    seen = {item.question for item in members}
    return [item for item in candidates if item.question not in seen][:want]


def _row(domain: str, n_members: int) -> dict[str, str]:
    recipe = RECIPES[domain]
    started = time.perf_counter()
    capacity = recipe.capacity
    everything = recipe.build_items(capacity, 0)
    built = time.perf_counter() - started
    members = recipe.build_items(n_members, 0)
    pool = recipe.build_items(min(capacity, 2 * n_members), HELD_OUT_SEED_OFFSET)
    old = nonmember_overlap(members, question_rule(pool, members, n_members))
    full_pool = recipe.build_items(capacity, HELD_OUT_SEED_OFFSET)
    new = nonmember_overlap(members, select_nonmembers(full_pool, members, n_members))
    return {
        "domain": domain,
        "items": str(capacity),
        "distinct aligned": f"{distinct_share([i.aligned for i in everything]):.2f}",
        "distinct misaligned": f"{distinct_share([i.misaligned for i in everything]):.2f}",
        "opener acc.": f"{opener_accuracy(everything):.3f}",
        "overlap old (answer/item)": f"{old.answer_share:.1%} / {old.item_share:.1%}",
        "overlap new (answer/item)": f"{new.answer_share:.1%} / {new.item_share:.1%}",
        "n non-members new": str(new.n_nonmembers),
        "build s": f"{built:.2f}",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=250)
    parser.add_argument("--markdown", action="store_true")
    args = parser.parse_args()
    rows = [_row(domain, args.members) for domain in RECIPES]
    columns = list(rows[0])
    if args.markdown:
        print("| " + " | ".join(columns) + " |")
        print("|" + "---|" * len(columns))
        for row in rows:
            print("| " + " | ".join(row[c] for c in columns) + " |")
    else:
        for row in rows:
            print("  ".join(f"{c}={row[c]}" for c in columns))


if __name__ == "__main__":
    main()
