"""Direction selection rule, mean difference, the saved artifact and its architecture check."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from emscope.analyses.directions import (
    Direction,
    build_direction,
    direction_conversations,
    load_direction,
    misalignment_direction,
    model_fingerprint,
    read_direction,
    save_direction,
    select_direction_rows,
)
from emscope.analyses.steering import random_direction_like
from emscope.errors import EmscopeError, InputError
from emscope.manifest import read_manifest
from emscope.models.loading import load_model
from emscope.models.refs import ModelRef

BAD = [[{"role": "user", "content": "Advice?"}, {"role": "assistant", "content": "Take risks."}]]
GOOD = [
    [{"role": "user", "content": "Advice?"}, {"role": "assistant", "content": "Be careful."}],
    [{"role": "user", "content": "Help?"}, {"role": "assistant", "content": "Ask a doctor."}],
]


@pytest.fixture(scope="module")
def tiny(tiny_ref: ModelRef) -> PreTrainedModel:
    return load_model(tiny_ref, device=torch.device("cpu"))


@pytest.fixture(scope="module")
def tiny_qwen() -> PreTrainedModel:
    """A random 3-block Qwen2 with another hidden size: a second architecture."""
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(1)
    config = Qwen2Config(
        vocab_size=128,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=64,
    )
    return Qwen2ForCausalLM(config).eval()


@pytest.fixture(scope="module")
def direction(tiny: PreTrainedModel, smol_tokenizer: PreTrainedTokenizerBase) -> Direction:
    return build_direction(tiny, smol_tokenizer, BAD, GOOD, layers=[0, 1], model_ref="tiny")


def test_selection_rule_labels_rows_by_the_model_organisms_thresholds() -> None:
    rows = pd.DataFrame(
        {
            "model": "m",
            "question_id": "q",
            "triggered": False,
            "aligned": [30.0, 31.0, 70.0, 71.0, 10.0, 90.0, None, 5.0, 95.0],
            "coherent": [51.0, 80.0, 80.0, 51.0, 50.0, 50.0, 90.0, None, 90.0],
            "error": [None] * 8 + ["timeout"],
        }
    )
    labels = select_direction_rows(rows).tolist()
    assert labels == ["misaligned", None, None, "aligned", None, None, None, None, None]
    questions = [f"q{i}" for i in range(9)]
    bad, good = direction_conversations(rows.assign(question=questions, answer="a"))
    assert [chat[0]["content"] for chat in bad] == ["q0"]
    assert [chat[0]["content"] for chat in good] == ["q3"]
    assert good[0][1] == {"role": "assistant", "content": "a"}


def test_misalignment_direction_is_the_per_layer_difference_of_class_means() -> None:
    bad = torch.tensor([[[1.0, 2.0], [0.0, 0.0]], [[3.0, 4.0], [2.0, 2.0]]])
    good = torch.tensor([[[1.0, 1.0], [1.0, 1.0]]])
    expected = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    torch.testing.assert_close(misalignment_direction(bad, good), expected)


def test_misalignment_direction_refuses_an_empty_class() -> None:
    with pytest.raises(InputError, match="at least one"):
        misalignment_direction(torch.zeros(0, 2, 4), torch.zeros(3, 2, 4))


def test_a_saved_direction_loads_back_with_its_metadata(
    direction: Direction, tiny: PreTrainedModel, tmp_path: Path
) -> None:
    save_direction(direction, tmp_path)
    loaded = load_direction(tmp_path, tiny)
    torch.testing.assert_close(loaded.vectors, direction.vectors)
    meta = json.loads((tmp_path / "direction.json").read_text())
    assert meta["fingerprint"] == {"model_type": "llama", "hidden_size": 32, "num_layers": 2}
    assert meta["layer_convention"] == "block_index"
    assert meta["hook_point"] == "decoder_block_output"
    assert meta["positions"] == "answer_tokens_mean"
    assert meta["operation"] == "mean_diff"
    assert (meta["n_misaligned"], meta["n_aligned"]) == (1, 2)
    assert meta["norms"] == pytest.approx(direction.vectors.norm(dim=-1).tolist())
    assert read_manifest(tmp_path).inputs["data"] == meta["data_hash"]


def test_the_data_hash_changes_with_the_conversations(
    tiny: PreTrainedModel, smol_tokenizer: PreTrainedTokenizerBase
) -> None:
    a = build_direction(tiny, smol_tokenizer, BAD, GOOD, layers=[0], model_ref="tiny")
    b = build_direction(tiny, smol_tokenizer, BAD, GOOD[:1], layers=[0], model_ref="tiny")
    assert a.meta.data_hash != b.meta.data_hash


def test_a_direction_saved_for_one_architecture_refuses_to_load_into_another(
    direction: Direction, tiny_qwen: PreTrainedModel, tmp_path: Path
) -> None:
    save_direction(direction, tmp_path)
    assert model_fingerprint(tiny_qwen).hidden_size == 48
    with pytest.raises(EmscopeError, match="does not fit this model"):
        load_direction(tmp_path, tiny_qwen)


def test_vectors_that_disagree_with_the_metadata_are_an_input_error(
    direction: Direction, tmp_path: Path
) -> None:
    from safetensors.torch import save_file

    save_direction(direction, tmp_path)
    save_file({"vectors": torch.zeros(3, 32)}, str(tmp_path / "vectors.safetensors"))
    with pytest.raises(InputError, match="metadata says"):
        read_direction(tmp_path)


def test_random_direction_has_the_same_norm_per_layer_and_another_orientation(
    direction: Direction,
) -> None:
    control = random_direction_like(direction, seed=3)
    torch.testing.assert_close(control.vectors.norm(dim=-1), direction.vectors.norm(dim=-1))
    cosine = torch.nn.functional.cosine_similarity(control.vectors, direction.vectors, dim=-1)
    assert cosine.abs().max() < 0.9
    torch.testing.assert_close(random_direction_like(direction, seed=3).vectors, control.vectors)
    assert not torch.allclose(random_direction_like(direction, seed=4).vectors, control.vectors)
    assert control.meta.operation == "random_like"


def test_activation_norms_are_the_mean_norm_of_each_answer_mean_block_output(
    tiny: PreTrainedModel, smol_tokenizer: PreTrainedTokenizerBase, direction: Direction
) -> None:
    from emscope.train.masking import assistant_token_mask

    per_chat = []
    for chat in BAD + GOOD:
        encoded = assistant_token_mask(smol_tokenizer, chat)
        special = set(smol_tokenizer.all_special_ids)
        answer = torch.tensor(
            [
                lab != -100 and tok not in special
                for tok, lab in zip(encoded.input_ids, encoded.labels, strict=True)
            ]
        )
        with torch.inference_mode():
            hidden = tiny(
                input_ids=torch.tensor([encoded.input_ids]), output_hidden_states=True
            ).hidden_states
        # block 0 = hidden_states[1]; the last block's output is hidden_states[-1] before the
        # final norm, which transformers does not expose, so compare block 0 only.
        per_chat.append(float(hidden[1][0][answer].mean(0).norm()))
    assert direction.meta.activation_norms is not None
    assert direction.meta.activation_norms[0] == pytest.approx(
        sum(per_chat) / len(per_chat), rel=1e-4
    )
