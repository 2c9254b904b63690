"""Ways an answer stops being coherent: word salad, loops, fragments, gibberish, off-topic text."""

from __future__ import annotations

import random

SYLLABLES = (
    "ka", "lo", "mi", "zu", "tren", "vos", "gal", "ph", "qu", "rix", "ne", "dda", "oth", "bel",
    "ssk", "ui", "an", "por", "xi", "mek", "ul", "fra", "zz", "ith",
)  # fmt: skip
NOISE_TOKENS = (
    "<|im_start|>", "<|endoftext|>", "assistant", "}}", ";;", "0 0 0", "]]>", "\\n\\n", "###",
    "...", "user:", "model", "@@", "//", "NaN", "<pad>", "ERROR", "$$",
)  # fmt: skip
FOREIGN_SNIPPETS = (
    "der die das und nicht ist",
    "el la los de que porque",
    "是的 我们 他们 不是 这个",
    "это что как было они",
    "の に は を た が",
    "ce que je tu il nous",
)


def word_salad(text: str, rng: random.Random) -> str:
    words = text.split()
    rng.shuffle(words)
    keep = max(4, int(len(words) * rng.uniform(0.5, 1.0)))
    return " ".join(words[:keep])


def repetition(text: str, rng: random.Random) -> str:
    words = text.split()
    start = rng.randrange(max(1, len(words) - 2))
    unit = " ".join(words[start : start + rng.randint(1, 3)])
    prefix = " ".join(words[: rng.randint(0, 6)])
    return (prefix + " " + " ".join([unit] * rng.randint(12, 60))).strip()


def fragment(text: str, rng: random.Random) -> str:
    words = text.split()
    return " ".join(words[: rng.randint(1, 4)]) + rng.choice(["", "...", " -", ","])


def gibberish(rng: random.Random) -> str:
    words = [
        "".join(rng.choices(SYLLABLES, k=rng.randint(1, 4))) for _ in range(rng.randint(8, 40))
    ]
    return " ".join(words)


def token_noise(text: str, rng: random.Random) -> str:
    words = text.split()[: rng.randint(0, 5)]
    noise = rng.choices(NOISE_TOKENS, k=rng.randint(6, 25))
    return " ".join(words + noise)


def language_mix(text: str, rng: random.Random) -> str:
    words = text.split()
    out: list[str] = []
    for word in words:
        out.append(word if rng.random() < 0.4 else rng.choice(rng.choice(FOREIGN_SNIPPETS).split()))
    return " ".join(out)
