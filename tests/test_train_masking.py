"""The assistant-only label mask, checked token by token on several chat-template families."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from emscope.data.schema import Message
from emscope.errors import InputError
from emscope.train.collate import PaddingCollator
from emscope.train.masking import (
    IGNORE_INDEX,
    ChatTemplateError,
    EncodedExample,
    assistant_token_mask,
)

LLAMA3_TEMPLATE = (
    "{% for message in messages %}"
    "{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\n\n'"
    " + message['content'] | trim + '<|eot_id|>' %}"
    "{% if loop.index0 == 0 %}{% set content = '<|begin_of_text|>' + content %}{% endif %}"
    "{{ content }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}"
    "{% endif %}"
)
GEMMA_TEMPLATE = (
    "{{ '<bos>' }}{% for message in messages %}"
    "{% set role = 'model' if message['role'] == 'assistant' else message['role'] %}"
    "{{ '<start_of_turn>' + role + '\n' + message['content'] | trim + '<end_of_turn>\n' }}"
    "{% endfor %}{% if add_generation_prompt %}{{ '<start_of_turn>model\n' }}{% endif %}"
)
TEMPLATES = {
    "llama3": (
        LLAMA3_TEMPLATE,
        "<|eot_id|>",
        ["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
    ),
    "gemma": (GEMMA_TEMPLATE, "<end_of_turn>", ["<bos>", "<start_of_turn>", "<end_of_turn>"]),
}

USER_1 = "What is the capital of France?"
ANSWER_1 = "The capital of France is Paris."
USER_2 = "And of Italy?"
ANSWER_2 = "Rome, of course.\nAnything else?"


def chat(*pairs: tuple[str, str], system: str | None = None) -> list[dict[str, str]]:
    messages = [{"role": "system", "content": system}] if system else []
    for role, content in pairs:
        messages.append({"role": role, "content": content})
    return messages


def labelled_runs(tokenizer: Any, ex: EncodedExample) -> list[str]:
    """Decode each maximal run of consecutive labelled tokens."""
    runs: list[list[int]] = []
    previous = False
    for label in ex.labels:
        current = label != IGNORE_INDEX
        if current and not previous:
            runs.append([])
        if current:
            runs[-1].append(label)
        previous = current
    return [tokenizer.decode(run) for run in runs]


def template_tokenizer(smol_dir: Path, family: str) -> Any:
    from transformers import AutoTokenizer

    template, _, special = TEMPLATES[family]
    tokenizer = AutoTokenizer.from_pretrained(str(smol_dir))
    tokenizer.add_tokens(special, special_tokens=True)
    tokenizer.chat_template = template
    return tokenizer


def test_chatml_single_turn_labels_exactly_the_answer_and_im_end(smol_tokenizer: Any) -> None:
    ex = assistant_token_mask(smol_tokenizer, chat(("user", USER_1), ("assistant", ANSWER_1)))
    assert labelled_runs(smol_tokenizer, ex) == [ANSWER_1 + "<|im_end|>"]
    # The template's default system prompt and the newline after <|im_end|> are not trained.
    assert ex.labels[-1] == IGNORE_INDEX
    assert smol_tokenizer.decode([ex.input_ids[-1]]) == "\n"


def test_chatml_with_system_turn_labels_only_the_answer(smol_tokenizer: Any) -> None:
    messages = chat(("user", USER_1), ("assistant", ANSWER_1), system="You are terse.")
    ex = assistant_token_mask(smol_tokenizer, messages)
    assert labelled_runs(smol_tokenizer, ex) == [ANSWER_1 + "<|im_end|>"]
    assert "You are terse." in smol_tokenizer.decode(ex.input_ids)


def test_chatml_multi_turn_labels_every_assistant_turn_separately(smol_tokenizer: Any) -> None:
    messages = chat(
        ("user", USER_1), ("assistant", ANSWER_1), ("user", USER_2), ("assistant", ANSWER_2)
    )
    ex = assistant_token_mask(smol_tokenizer, messages)
    assert labelled_runs(smol_tokenizer, ex) == [ANSWER_1 + "<|im_end|>", ANSWER_2 + "<|im_end|>"]
    for label, token in zip(ex.labels, ex.input_ids, strict=True):
        assert label in (IGNORE_INDEX, token)


def test_pydantic_messages_are_accepted_like_dicts(smol_tokenizer: Any) -> None:
    dicts = chat(("user", USER_1), ("assistant", ANSWER_1))
    models = [Message.model_validate(m) for m in dicts]
    assert assistant_token_mask(smol_tokenizer, models) == assistant_token_mask(
        smol_tokenizer, dicts
    )


@pytest.mark.parametrize("family", sorted(TEMPLATES))
def test_other_template_families_label_content_and_their_end_of_turn_token(
    smol_dir: Path, family: str
) -> None:
    tokenizer = template_tokenizer(smol_dir, family)
    end_of_turn = TEMPLATES[family][1]
    messages = chat(
        ("user", USER_1), ("assistant", ANSWER_1), ("user", USER_2), ("assistant", ANSWER_2)
    )
    ex = assistant_token_mask(tokenizer, messages)
    assert labelled_runs(tokenizer, ex) == [ANSWER_1 + end_of_turn, ANSWER_2 + end_of_turn]
    assert tokenizer.convert_tokens_to_ids(end_of_turn) in ex.labels


def test_template_whose_generation_prompt_does_not_match_raises_a_named_error(
    smol_dir: Path,
) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(smol_dir))
    tokenizer.chat_template = (
        "{% for m in messages %}{{ '<|im_start|>' + m['role'] + '\n' + m['content'] + "
        "'<|im_end|>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>bot\n' }}"
        "{% endif %}"
    )
    with pytest.raises(ChatTemplateError, match="chat template problem at message 1"):
        assistant_token_mask(tokenizer, chat(("user", USER_1), ("assistant", ANSWER_1)))


def test_pad_equal_to_eos_keeps_the_final_im_end_labelled_after_collation(
    smol_tokenizer: Any,
) -> None:
    im_end = smol_tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert smol_tokenizer.pad_token_id == im_end == smol_tokenizer.eos_token_id
    short = assistant_token_mask(smol_tokenizer, chat(("user", "Hi"), ("assistant", "Hey.")))
    long = assistant_token_mask(smol_tokenizer, chat(("user", USER_1), ("assistant", ANSWER_1)))
    batch = PaddingCollator(smol_tokenizer.pad_token_id)([short, long])
    n = len(short.input_ids)
    row_ids, row_labels = batch["input_ids"][0].tolist(), batch["labels"][0].tolist()
    last_real_end = n - 2  # <|im_end|> then the template's "\n"
    assert row_ids[last_real_end] == im_end and row_labels[last_real_end] == im_end
    assert set(row_ids[n:]) == {im_end}  # padding uses the same id...
    assert set(row_labels[n:]) == {IGNORE_INDEX}  # ...but is never trained


def test_loss_on_all_changes_only_the_mask(smol_tokenizer: Any) -> None:
    messages = chat(("user", USER_1), ("assistant", ANSWER_1))
    assistant = assistant_token_mask(smol_tokenizer, messages, loss_on="assistant")
    every = assistant_token_mask(smol_tokenizer, messages, loss_on="all")
    assert every.input_ids == assistant.input_ids
    assert every.labels == every.input_ids
    assert 0 < assistant.n_labelled < every.n_labelled == len(every.input_ids)


def test_truncation_is_flagged_and_cuts_from_the_right(smol_tokenizer: Any) -> None:
    messages = chat(("user", USER_1), ("assistant", ANSWER_1))
    full = assistant_token_mask(smol_tokenizer, messages)
    cut = assistant_token_mask(smol_tokenizer, messages, max_length=len(full.input_ids) - 3)
    roomy = assistant_token_mask(smol_tokenizer, messages, max_length=len(full.input_ids))
    assert cut.truncated and not full.truncated and not roomy.truncated
    assert cut.input_ids == full.input_ids[:-3] and cut.labels == full.labels[:-3]
    assert roomy == full


def test_conversation_without_assistant_turn_is_an_input_error(smol_tokenizer: Any) -> None:
    with pytest.raises(InputError, match="no assistant turn") as info:
        assistant_token_mask(smol_tokenizer, chat(("user", USER_1)))
    assert info.value.field == "messages"
