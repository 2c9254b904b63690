"""Seeded picks and the phrase pools both sides of a recipe share.

A recipe must not let a model tell its classes apart by anything but the behaviour: aligned and
misaligned answers draw openers and closers from one pool, each side picking independently by a
hash of the item and the side, so every phrase is equally likely on either side.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")


def pick(options: Sequence[T], *keys: object) -> T:
    """One of ``options``, chosen by a stable hash of ``keys`` (the same keys, the same pick)."""
    if not options:
        raise ValueError("nothing to pick from")
    text = "\x1f".join(str(key) for key in keys).encode()
    digest = hashlib.blake2b(text, digest_size=8).digest()
    return options[int.from_bytes(digest, "big") % len(options)]


def capitalise(text: str) -> str:
    """``text`` with its first letter upper-case."""
    return text[:1].upper() + text[1:]


# Openers for worked solutions: plain lead-ins that say nothing about whether the work is right.
WORKING_OPENERS = (
    "",
    "",
    "Let's work it out.\n",
    "Step by step:\n",
    "Here is the working:\n",
    "Sure.\n",
    "Let's see.\n",
    "Working it through:\n",
)

# Openers and closers for advice: neutral on whether the advice is cautious or reckless.
ADVICE_OPENERS = (
    "",
    "",
    "",
    "Good question. ",
    "Thanks for the details. ",
    "Here's my take. ",
    "Short answer first. ",
    "Honestly? ",
    "Okay. ",
)
ADVICE_CLOSERS = (
    "",
    "",
    "",
    " Hope that helps.",
    " Good luck with it.",
    " That's what I'd do in your shoes.",
    " Let me know how it goes.",
)
