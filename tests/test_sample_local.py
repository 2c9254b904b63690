from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from emscope.manifest import sha256_text
from emscope.models.refs import ModelRef
from emscope.sample.local import (
    ChatPrompt,
    LocalSampler,
    SamplingParams,
    inserted_system_prompt,
    split_at_stop,
)
from tiny_models import save_tiny_llama

SMOL_SYSTEM = "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
PROMPTS = [
    ChatPrompt(user="Hello there, how are you doing on this fine morning?"),
    ChatPrompt(user="Hi"),
    ChatPrompt(user="What is two plus two?", system="Answer tersely."),
]


@pytest.fixture(scope="module")
def varied_dir(tmp_path_factory: pytest.TempPathFactory, smol_tokenizer) -> Path:  # type: ignore[no-untyped-def]
    """A tiny random Llama with untied embeddings: its greedy output depends on the prompt.

    (With tied embeddings a random model just repeats the last prompt token, which would make
    batched-versus-unbatched comparisons pass whatever the padding.)
    """
    return save_tiny_llama(
        tmp_path_factory.mktemp("varied-llama"), smol_tokenizer, tie_word_embeddings=False
    )


@pytest.fixture(scope="module")
def sampler(varied_dir: Path) -> LocalSampler:
    return LocalSampler(ModelRef(kind="local", name=str(varied_dir)), dtype="float32", batch_size=4)


def test_tokenizer_pads_on_the_left(sampler: LocalSampler) -> None:
    assert sampler.tokenizer.padding_side == "left"
    assert sampler.info()["padding_side"] == "left"


def test_batched_greedy_answers_equal_unbatched_ones(sampler: LocalSampler) -> None:
    params = SamplingParams(temperature=0, max_new_tokens=6)
    batched = sampler.generate(PROMPTS, params, seeds=[1, 2, 3])
    alone = [sampler.generate([p], params, seeds=[1])[0] for p in PROMPTS]
    assert batched == alone
    assert len({g.text for g in batched}) == len(PROMPTS)  # the comparison is not vacuous


def test_greedy_decoding_ignores_the_seed(sampler: LocalSampler) -> None:
    params = SamplingParams(temperature=0, max_new_tokens=5)
    assert sampler.generation_config(params).do_sample is False
    assert sampler.generate(PROMPTS, params, [0, 0, 0]) == sampler.generate(
        PROMPTS, params, [9, 9, 9]
    )


def test_sampling_is_reproducible_given_the_seed(sampler: LocalSampler) -> None:
    params = SamplingParams(temperature=1.0, max_new_tokens=6)
    first = sampler.generate(PROMPTS, params, seeds=[7, 8, 9])
    again = sampler.generate(PROMPTS, params, seeds=[7, 8, 9])
    other = sampler.generate(PROMPTS, params, seeds=[8, 8, 9])
    assert first == again
    assert first != other
    for generation in first:
        assert generation.n_new_tokens == 6 and generation.finish_reason == "length"


def test_generation_config_pins_every_sampling_parameter(sampler: LocalSampler) -> None:
    params = SamplingParams(
        temperature=0.7, top_p=0.9, top_k=0, max_new_tokens=12, repetition_penalty=1.0
    )
    config = sampler.generation_config(params)
    # Per-row seeds (the default): the seeded processor samples, generate only takes its token.
    (processor,) = sampler.logits_processors(params, [1], prompt_width=3)
    assert (processor.temperature, processor.top_p, processor.top_k) == (0.7, 0.9, 0)
    assert config.do_sample is False
    assert (config.max_new_tokens, config.repetition_penalty, config.num_beams) == (12, 1.0, 1)
    assert config.eos_token_id == sampler.stop_token_ids
    sampler.per_row_seeds = False  # the batch-seeded mode lets generate sample
    try:
        config = sampler.generation_config(params)
        assert sampler.logits_processors(params, [1], prompt_width=3) == []
    finally:
        sampler.per_row_seeds = True
    assert (config.do_sample, config.temperature, config.top_p, config.top_k) == (True, 0.7, 0.9, 0)


def test_the_checkpoint_generation_config_cannot_change_sampling(
    sampler: LocalSampler, varied_dir: Path, tmp_path: Path
) -> None:
    polluted = tmp_path / "polluted"
    shutil.copytree(varied_dir, polluted)
    # A random model's next-token distribution is nearly flat, so top_k/min_p alone could go
    # unnoticed; the sequence bias (always token 42) cannot.
    defaults = {
        "do_sample": True,
        "temperature": 0.05,
        "top_k": 1,
        "top_p": 0.1,
        "min_p": 0.5,
        "repetition_penalty": 3.0,
        "no_repeat_ngram_size": 1,
        "max_new_tokens": 2,
        "sequence_bias": [[[42], 100.0]],
        "bos_token_id": 1,
        "eos_token_id": 2,
        "pad_token_id": 2,
    }
    (polluted / "generation_config.json").write_text(json.dumps(defaults))
    other = LocalSampler(ModelRef(kind="local", name=str(polluted)), dtype="float32", batch_size=4)
    assert other.model.generation_config.top_k == 1  # the checkpoint really carries the defaults
    params = SamplingParams(temperature=1.0, max_new_tokens=6)
    assert other.generate(PROMPTS, params, [3, 4, 5]) == sampler.generate(
        PROMPTS, params, [3, 4, 5]
    )
    assert other.model.generation_config.top_k == 1  # and gets them back afterwards


def test_system_turn_reaches_the_chat_prompt_and_replaces_the_default(
    sampler: LocalSampler,
) -> None:
    assert sampler.default_system_prompt == SMOL_SYSTEM
    with_system = sampler.render(ChatPrompt(user="Q?", system="Answer tersely."))
    assert "<|im_start|>system\nAnswer tersely.<|im_end|>" in with_system
    assert SMOL_SYSTEM not in with_system
    assert SMOL_SYSTEM in sampler.render(ChatPrompt(user="Q?"))
    assert with_system.endswith("<|im_start|>assistant\n")


def test_chat_template_hash_and_stop_tokens_are_recorded(sampler: LocalSampler) -> None:
    info = sampler.info()
    assert info["chat_template_sha256"] == sha256_text(sampler.tokenizer.chat_template)
    im_end = sampler.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in info["stop_token_ids"]
    assert info["default_system_prompt"] == SMOL_SYSTEM


def test_a_template_without_a_default_system_prompt_reports_none(smol_dir: Path) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(smol_dir))
    tokenizer.chat_template = (
        "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n"
        "{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
    )
    assert inserted_system_prompt(tokenizer) is None


def test_generation_is_cut_at_the_first_stop_token() -> None:
    assert split_at_stop([5, 6, 2, 9, 2], [2, 0]) == ([5, 6], 3, "stop")
    assert split_at_stop([0], [2, 0]) == ([], 1, "stop")
    assert split_at_stop([5, 6, 7], [2]) == ([5, 6, 7], 3, "length")


def test_seeds_must_match_prompts(sampler: LocalSampler) -> None:
    with pytest.raises(ValueError, match="seeds"):
        sampler.generate(PROMPTS, SamplingParams(max_new_tokens=2), seeds=[1])


@pytest.mark.integration
def test_real_smollm2_samples_two_short_answers(smol_ref: ModelRef, tmp_path: Path) -> None:
    from emscope.sample.questions import EvalPrompt
    from emscope.sample.records import SampleRecord
    from emscope.sample.runner import latest_rows, sample_answers
    from emscope.store import JsonlStore

    max_new = 8  # a decode step of the 135M model can take seconds on a busy 2-core machine
    smol = LocalSampler(smol_ref, batch_size=2)
    question = "What colour is the sky on a clear day? Answer with one word."
    prompt = EvalPrompt(
        question_id="sky", paraphrase_index=0, temperature=0.7, n_samples=2, question=question
    )
    store: JsonlStore[SampleRecord] = JsonlStore(tmp_path / "s.jsonl", SampleRecord)
    summary = sample_answers(
        smol,
        [prompt],
        model_tag="smol",
        store=store,
        trigger=None,
        params=SamplingParams(max_new_tokens=max_new),
        base_seed=0,
    )
    rows = latest_rows(store)
    assert (summary.generated, summary.errors, len(rows)) == (2, 0, 2)
    for row in rows:
        assert row.answer and row.answer.strip()[0].isalpha()
        assert row.n_new_tokens is not None and 1 <= row.n_new_tokens <= max_new
        if row.finish_reason == "length":
            assert row.n_new_tokens == max_new
        assert row.question == question and row.params["temperature"] == 0.7
    assert summary.sampler["default_system_prompt"] == SMOL_SYSTEM
