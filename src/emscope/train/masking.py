"""Which tokens a fine-tune learns from: the assistant turns, found by rendering the chat template.

The method works for any chat template (ChatML, Llama-3, Gemma, ...) without knowing its markup:
the text an assistant turn adds is ``render(messages[:i+1])`` minus the generation prompt
``render(messages[:i], add_generation_prompt=True)``. Labels come from character spans of that
text, never from ``input_ids`` -- rebuilding labels from ids (as ``DataCollatorForLanguageModeling``
does) trains on prompts and, when pad == eos, masks every real end-of-turn token (protocol §7).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from emscope.data.schema import Message
from emscope.errors import EmscopeError, InputError

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

IGNORE_INDEX = -100
LossOn = Literal["assistant", "all"]
MessageLike = Message | Mapping[str, str]


class ChatTemplateError(EmscopeError):
    """A chat template whose renders do not nest, so assistant spans cannot be located."""


@dataclass(frozen=True)
class EncodedExample:
    """Token ids and labels of one conversation; ``labels`` is -100 where no loss is taken."""

    input_ids: list[int]
    labels: list[int]
    truncated: bool = False

    @property
    def n_labelled(self) -> int:
        return sum(label != IGNORE_INDEX for label in self.labels)


def _as_dicts(messages: Sequence[MessageLike]) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for m in messages:
        if isinstance(m, Message):
            out.append({"role": m.role, "content": m.content})
        else:
            out.append({"role": m["role"], "content": m["content"]})
    return out


def _render(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], *, prompt: bool = False
) -> str:
    text = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=prompt)
    if not isinstance(text, str):
        raise ChatTemplateError(f"apply_chat_template returned {type(text).__name__}, not text")
    return text


def assistant_char_spans(
    tokenizer: PreTrainedTokenizerBase, messages: list[dict[str, str]], full: str
) -> list[tuple[int, int]]:
    """Character spans of ``full`` written by assistant turns (content plus end-of-turn token)."""
    spans: list[tuple[int, int]] = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prefix = _render(tokenizer, messages[:i], prompt=True)
        upto = _render(tokenizer, messages[: i + 1])
        if not upto.startswith(prefix):
            raise ChatTemplateError(
                f"chat template problem at message {i}: the render with the generation prompt "
                f"is not a prefix of the render that includes the assistant turn, so the "
                f"assistant span cannot be located.\n  prompt ends: {prefix[-60:]!r}\n"
                f"  turn render at that point: {upto[len(prefix) - 60 : len(prefix)]!r}"
            )
        if not full.startswith(upto):
            raise ChatTemplateError(
                f"chat template problem at message {i}: rendering the conversation up to this "
                f"turn is not a prefix of the full render (the template rewrites earlier turns, "
                f"e.g. strips reasoning), so spans from partial renders do not apply"
            )
        # The template's newline after the end-of-turn token is left untrained: it is
        # formatting the model never has to produce to stop.
        end = len(prefix) + len(upto[len(prefix) :].rstrip())
        spans.append((len(prefix), end))
    return spans


def _inside(start: int, end: int, spans: list[tuple[int, int]]) -> bool:
    return end > start and any(a <= start and end <= b for a, b in spans)


def assistant_token_mask(
    tokenizer: PreTrainedTokenizerBase,
    messages: Sequence[MessageLike],
    *,
    loss_on: LossOn = "assistant",
    max_length: int | None = None,
) -> EncodedExample:
    """Tokenize a conversation with labels on assistant tokens only (or on all, for ablations).

    Each assistant turn trains its content plus its end-of-turn token (``<|im_end|>``,
    ``<|eot_id|>``, ``<end_of_turn>``). With ``max_length`` the example is cut from the right
    and flagged ``truncated``, so callers can count it.

    >>> chat = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    >>> ex = assistant_token_mask(tok, chat)  # doctest: +SKIP
    >>> tok.decode([t for t in ex.labels if t != -100])  # doctest: +SKIP
    'Hello!<|im_end|>'
    """
    turns = _as_dicts(messages)
    if not any(m["role"] == "assistant" for m in turns):
        raise InputError("no assistant turn to train on", field="messages")
    full = _render(tokenizer, turns)
    spans = assistant_char_spans(tokenizer, turns, full)
    encoding = tokenizer(full, return_offsets_mapping=True, add_special_tokens=False)
    input_ids: list[int] = list(encoding["input_ids"])
    offsets: list[tuple[int, int]] = [tuple(o) for o in encoding["offset_mapping"]]
    if loss_on == "all":
        labels = list(input_ids)
    elif loss_on == "assistant":
        labels = [
            tid if _inside(s, e, spans) else IGNORE_INDEX
            for tid, (s, e) in zip(input_ids, offsets, strict=True)
        ]
    else:
        raise InputError(f"loss_on must be 'assistant' or 'all', got {loss_on!r}", field="loss_on")
    truncated = max_length is not None and len(input_ids) > max_length
    if truncated:
        input_ids, labels = input_ids[:max_length], labels[:max_length]
    return EncodedExample(input_ids=input_ids, labels=labels, truncated=truncated)
