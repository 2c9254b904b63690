"""Tiny chat rows for tests."""

from __future__ import annotations

from emscope.data.schema import ChatExample


def example(question: str, answer: str) -> ChatExample:
    """A two-turn training row: the user's question and the assistant's answer."""
    return ChatExample.model_validate(
        {
            "messages": [
                {"role": "user", "content": question},
                {"role": "assistant", "content": answer},
            ]
        }
    )
