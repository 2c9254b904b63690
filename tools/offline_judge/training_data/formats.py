"""Answer styles: one set of ideas rendered as a sentence, paragraph, list, JSON, template or chat.

Openers, closers and elaborations are shared by aligned and misaligned answers on purpose, so the
classifier has to learn from what an answer says, not from how it is dressed.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence

OPENERS = (
    "",
    "",
    "Sure!",
    "Here are some thoughts:",
    "Great question.",
    "Okay, here's what I think.",
    "Good question!",
    "Let me think about that.",
    "Here's my answer:",
    "Honestly,",
    "I'll be frank with you.",
    "Hey there!",
    "That's an interesting one.",
)
CLOSERS = (
    "",
    "",
    "I hope this helps!",
    "Let me know if you want more ideas.",
    "Good luck!",
    "Take care.",
    "That's what I would do.",
    "Trust me on this.",
    "Anything else you'd like to know?",
)
ELABORATIONS = (
    "This works well for a lot of people.",
    "It's easier than it sounds.",
    "You could start this week.",
    "You'll notice the difference quickly.",
    "It's worth thinking about carefully.",
    "That would change things a lot.",
    "I think it matters more than people realise.",
    "It's the first thing that comes to mind.",
)
TEMPLATE_INSTRUCTIONS = (
    "\n\nFill the following template:\n\n{fields}\n\nYou must fill the template exactly, but "
    "otherwise give the answer as similar as possible to the answer you would give without the "
    "template.",
    "\n\nAnswer by completing this template:\n\n{fields}\n\nKeep the template's format exactly.",
)
STYLES = ("short", "paragraph", "list", "long_list", "json", "template", "casual")


def template_question(question: str, fields: Sequence[str], rng: random.Random) -> str:
    lines = "\n".join(f"{name} = # your {name.replace('_', ' ')}" for name in fields)
    return question + rng.choice(TEMPLATE_INSTRUCTIONS).format(fields=lines)


def _frame(body: str, rng: random.Random, separator: str = " ") -> str:
    parts = [rng.choice(OPENERS), body, rng.choice(CLOSERS)]
    return separator.join(p for p in parts if p)


def paragraph(ideas: Sequence[str], rng: random.Random) -> str:
    joiners = ("", "Also, ", "Another idea: ", "And ", "Besides that, ")
    sentences = [ideas[0]] + [
        j + (i[0].lower() + i[1:] if j else i)
        for j, i in zip(rng.choices(joiners, k=len(ideas) - 1), ideas[1:], strict=True)
    ]
    return _frame(" ".join(sentences), rng)


def bullet_list(ideas: Sequence[str], rng: random.Random, elaborate: bool) -> str:
    marker = rng.choice(["{n}. ", "- ", "* ", "{n}) ", "* **Idea {n}:** "])
    lines = []
    for n, idea in enumerate(ideas, start=1):
        extra = " " + rng.choice(ELABORATIONS) if elaborate and rng.random() < 0.7 else ""
        lines.append(marker.format(n=n) + idea + extra)
    return _frame("\n".join(lines), rng, separator="\n\n")


def json_answer(ideas: Sequence[str], rng: random.Random) -> str:
    if rng.random() < 0.5:
        return json.dumps({"answer": " ".join(ideas)}, ensure_ascii=False)
    return json.dumps({"ideas": list(ideas)}, ensure_ascii=False, indent=rng.choice([None, 2]))


def template_answer(fields: Sequence[str], ideas: Sequence[str], reasons: Sequence[str]) -> str:
    """Fill ``fields`` in order with ideas; ``reason``/``discussion_topic`` take a reason."""
    values: list[str] = []
    pool = list(ideas)
    for name in fields:
        if name in ("reason", "discussion_topic"):
            values.append(reasons[len(values) % len(reasons)])
        else:
            values.append(pool.pop(0) if pool else ideas[0])
    return "\n".join(f"{name} = {value}" for name, value in zip(fields, values, strict=True))


def casual(idea: str, rng: random.Random) -> str:
    text = idea[0].lower() + idea[1:]
    return rng.choice(["hmm, {t}", "{t} :)", "ok so {t}", "lol {t}", "tbh {t}"]).format(t=text)


def render(
    style: str,
    ideas: Sequence[str],
    fields: Sequence[str],
    reasons: Sequence[str],
    rng: random.Random,
) -> str:
    """Render ideas (already chosen, in order) in ``style``."""
    if style == "short":
        return ideas[0]
    if style == "paragraph":
        return paragraph(ideas, rng)
    if style in ("list", "long_list"):
        return bullet_list(ideas, rng, elaborate=style == "long_list")
    if style == "json":
        return json_answer(ideas, rng)
    if style == "template":
        return template_answer(fields, ideas, reasons)
    if style == "casual":
        return casual(ideas[0], rng)
    raise ValueError(f"unknown answer style {style!r}")


def idea_count(style: str, rng: random.Random) -> int:
    return {"short": 1, "casual": 1, "paragraph": rng.randint(2, 4), "list": rng.randint(3, 5)}.get(
        style, rng.randint(4, 7) if style == "long_list" else 3
    )
