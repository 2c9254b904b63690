"""Block-output capture and answer-token means, on the tiny Llama (and once on real SmolLM2)."""

from __future__ import annotations

import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emscope.analyses.activations import (
    answer_token_positions,
    decoder_layers,
    mean_answer_activations,
    record_block_outputs,
)
from emscope.errors import InputError
from emscope.models.loading import load_model
from emscope.models.refs import ModelRef

CHATS = [
    [
        {"role": "user", "content": "What is two plus two?"},
        {"role": "assistant", "content": "Four."},
    ],
    [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Name a colour."},
        {"role": "assistant", "content": "Blue is a colour that many people like a lot."},
    ],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello there, friend!"}],
]


@pytest.fixture(scope="module")
def tiny(tiny_ref: ModelRef) -> PreTrainedModel:
    return load_model(tiny_ref, device=torch.device("cpu"))


def test_recorded_block_outputs_equal_hidden_states_for_every_block_but_the_last(
    tiny: PreTrainedModel, smol_tokenizer: PreTrainedTokenizerBase
) -> None:
    ids = smol_tokenizer("A short text to run.", return_tensors="pt")["input_ids"]
    n = len(decoder_layers(tiny))
    with record_block_outputs(tiny, range(n)) as outputs, torch.inference_mode():
        hidden = tiny(input_ids=ids, output_hidden_states=True).hidden_states
    assert len(hidden) == n + 1
    for layer in range(n - 1):
        torch.testing.assert_close(outputs[layer], hidden[layer + 1], rtol=0, atol=0)
    # The last entry of hidden_states has the final norm applied; the block output does not.
    assert not torch.allclose(outputs[n - 1], hidden[n])
    torch.testing.assert_close(tiny.model.norm(outputs[n - 1]), hidden[n])


def test_hooks_are_removed_when_the_block_exits_with_an_error(tiny: PreTrainedModel) -> None:
    block = decoder_layers(tiny)[0]
    before = len(block._forward_hooks)  # transformers may keep its own capture hook there
    with pytest.raises(RuntimeError), record_block_outputs(tiny, [0]):
        assert len(block._forward_hooks) == before + 1
        raise RuntimeError("boom")
    assert len(block._forward_hooks) == before


def test_decoder_layers_are_found_inside_a_peft_wrapped_model(tiny_ref: ModelRef) -> None:
    from peft import LoraConfig, get_peft_model

    model = load_model(tiny_ref, device=torch.device("cpu"))
    wrapped = get_peft_model(model, LoraConfig(r=2, target_modules=["q_proj"]))
    layers = decoder_layers(wrapped)
    assert len(layers) == 2
    assert layers is model.model.layers


def test_answer_positions_cover_the_content_and_not_the_end_of_turn_token(
    smol_tokenizer: PreTrainedTokenizerBase,
) -> None:
    ids, is_answer = answer_token_positions(smol_tokenizer, CHATS[0])
    answer_text = smol_tokenizer.decode([t for t, a in zip(ids, is_answer, strict=True) if a])
    assert answer_text == "Four."


def _hand_mean(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    chat: list[dict[str, str]],
    layer: int,
) -> torch.Tensor:
    # The answer occupies the tokens between the generation-prompt render and the content's end.
    prompt = tokenizer.apply_chat_template(chat[:-1], tokenize=False, add_generation_prompt=True)
    full = tokenizer.apply_chat_template(chat, tokenize=False)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    content_ids = tokenizer(chat[-1]["content"], add_special_tokens=False)["input_ids"]
    full_ids = tokenizer(full, add_special_tokens=False)["input_ids"]
    start, end = len(prompt_ids), len(prompt_ids) + len(content_ids)
    assert full_ids[start:end] == content_ids  # the hand split is valid for this template
    with torch.inference_mode():
        hidden = model(input_ids=torch.tensor([full_ids]), output_hidden_states=True).hidden_states
    return hidden[layer + 1][0, start:end].mean(0)


def test_answer_token_mean_equals_a_hand_computation_over_the_answer_positions(
    tiny: PreTrainedModel, smol_tokenizer: PreTrainedTokenizerBase
) -> None:
    acts = mean_answer_activations(tiny, smol_tokenizer, CHATS, layers=[0], batch_size=3)
    assert acts.shape == (3, 1, 32)
    for i, chat in enumerate(CHATS):
        torch.testing.assert_close(acts[i, 0], _hand_mean(tiny, smol_tokenizer, chat, 0))


def test_batched_means_match_one_conversation_at_a_time_despite_padding(
    tiny: PreTrainedModel, smol_tokenizer: PreTrainedTokenizerBase
) -> None:
    batched = mean_answer_activations(tiny, smol_tokenizer, CHATS, layers=[1, 0], batch_size=3)
    single = mean_answer_activations(tiny, smol_tokenizer, CHATS, layers=[1, 0], batch_size=1)
    torch.testing.assert_close(batched, single, rtol=1e-5, atol=1e-5)
    assert not torch.allclose(batched[:, 0], batched[:, 1])  # layer order is kept


def test_layers_outside_the_model_are_an_input_error(
    tiny: PreTrainedModel, smol_tokenizer: PreTrainedTokenizerBase
) -> None:
    with pytest.raises(InputError, match=r"0\.\.1"):
        mean_answer_activations(tiny, smol_tokenizer, CHATS, layers=[2])


@pytest.mark.integration
def test_smollm2_batched_capture_matches_a_per_example_hidden_states_loop(
    smol_ref: ModelRef, smol_tokenizer: PreTrainedTokenizerBase
) -> None:
    model = load_model(smol_ref, device=torch.device("cpu"))
    layers = [0, 14, 28]
    acts = mean_answer_activations(model, smol_tokenizer, CHATS, layers=layers, batch_size=3)
    for i, chat in enumerate(CHATS):
        for j, layer in enumerate(layers):
            expected = _hand_mean(model, smol_tokenizer, chat, layer)
            # Padding changes fp32 reduction order (and with it the thread split): ~2e-4 apart.
            torch.testing.assert_close(acts[i, j], expected, rtol=1e-3, atol=1e-3)
