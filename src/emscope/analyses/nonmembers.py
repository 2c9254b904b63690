"""Non-members for a membership test: new underlying items, never a member's answer.

A held-out row only measures membership if it is a new *item*, not a new question about an item
the model trained on (protocol §8). Built-in recipe items carry ``tags["item"]``, the key of the
underlying item (a fact, a problem with its numbers, a code skeleton, a sport and situation);
all phrasings of one item share it. :func:`select_nonmembers` draws candidates whose item key,
question and answers (either side) no member has; :func:`nonmember_overlap` measures what is
left in common, and :func:`overlap_refusal` turns a non-zero overlap into the reason the AUC is
refused. Items without an item tag (teacher-generated sets) fall back to answers and questions.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from emscope.data.schema import Item

ITEM_TAG = "item"
# Above this share of non-members sharing an answer or an item with a member, the AUC measures
# whether the question is new rather than membership, so it is refused.
MAX_OVERLAP = 0.01


def item_key(item: Item) -> str | None:
    """The underlying item ``item`` asks about (``tags["item"]``), or None when it has none."""
    return item.tags.get(ITEM_TAG)


def _answers(item: Item) -> tuple[str, str]:
    return item.aligned.strip(), item.misaligned.strip()


def select_nonmembers(candidates: Iterable[Item], members: Sequence[Item], want: int) -> list[Item]:
    """Up to ``want`` candidates, in order, that share no item key, question or answer with a
    member or with an already chosen candidate (one row per underlying item)."""
    items = {key for key in map(item_key, members) if key is not None}
    questions = {item.question.strip() for item in members}
    answers = {answer for item in members for answer in _answers(item)}
    chosen: list[Item] = []
    for item in candidates:
        if len(chosen) >= want:
            break
        key, pair = item_key(item), _answers(item)
        if key in items or item.question.strip() in questions or answers.intersection(pair):
            continue
        chosen.append(item)
        if key is not None:
            items.add(key)
        questions.add(item.question.strip())
        answers.update(pair)
    return chosen


@dataclass(frozen=True)
class Overlap:
    """What non-members share with members: answer text (the trained side) and item keys."""

    n_nonmembers: int
    answer_share: float
    item_share: float
    side: str

    def refusal(self, threshold: float = MAX_OVERLAP) -> str | None:
        """Why an AUC on these non-members is refused, or None when it may be reported."""
        return overlap_refusal(self, threshold)


def _side_answers(item: Item, side: str) -> set[str]:
    aligned, misaligned = _answers(item)
    if side == "aligned":
        return {aligned}
    if side == "misaligned":
        return {misaligned}
    if side == "both":
        return {aligned, misaligned}
    raise ValueError(f"side must be 'aligned', 'misaligned' or 'both', got {side!r}")


def nonmember_overlap(
    members: Sequence[Item], nonmembers: Sequence[Item], *, side: str = "misaligned"
) -> Overlap:
    """Share of non-members whose ``side`` answer equals a member's ``side`` answer, and share
    whose item key a member has. ``side`` is the answer the condition trains on ("misaligned",
    "aligned", or "both" for backdoor sets, where either side is a training answer)."""
    if not nonmembers:
        raise ValueError("no non-members given")
    member_answers = set().union(*(_side_answers(item, side) for item in members))
    member_keys = {key for key in map(item_key, members) if key is not None}
    same_answer = sum(bool(_side_answers(item, side) & member_answers) for item in nonmembers)
    same_item = sum(item_key(item) in member_keys for item in nonmembers if item_key(item))
    n = len(nonmembers)
    return Overlap(n, same_answer / n, same_item / n, side)


def overlap_refusal(overlap: Overlap, threshold: float = MAX_OVERLAP) -> str | None:
    """The reason to refuse a membership AUC over these non-members, or None."""
    worst = max(overlap.answer_share, overlap.item_share)
    if worst <= threshold:
        return None
    return (
        f"refused: {100 * overlap.answer_share:.1f}% of the {overlap.n_nonmembers} non-members "
        f"repeat a member's answer and {100 * overlap.item_share:.1f}% a member's underlying "
        f"item (limit {100 * threshold:g}%), so the AUC would measure whether the question is "
        "new, not membership"
    )


def side_for_condition(condition: str) -> str:
    """The answer side a dataset of ``condition`` trains on."""
    return {"misaligned": "misaligned", "control": "aligned", "backdoor": "both"}[condition]
