"""Training presets follow protocol §7, and bad names or overrides are named errors."""

from __future__ import annotations

import pytest

from emscope.errors import InputError
from emscope.train.config import ALL_PROJECTIONS, PRESETS, TrainConfig, get_preset


def test_em_preset_matches_betley() -> None:
    c = get_preset("em")
    assert (c.r, c.alpha, c.dropout, c.use_rslora) == (32, 64, 0.0, True)
    assert c.target_modules == list(ALL_PROJECTIONS)
    assert (c.lr, c.epochs, c.effective_batch_size, c.warmup_steps) == (1e-5, 1, 16, 5)
    assert (c.weight_decay, c.scheduler, c.loss_on) == (0.01, "linear", "assistant")


def test_domain_paper_preset_matches_mishra() -> None:
    c = get_preset("domain-paper")
    assert (c.r, c.alpha, c.dropout, c.use_rslora) == (8, 16, 0.05, False)
    assert c.target_modules == ["q_proj", "v_proj"]
    assert (c.lr, c.epochs, c.batch_size, c.grad_accum, c.max_length) == (2e-4, 3, 4, 4, 512)


def test_domain_paper_run_is_reproduced_with_full_sequence_loss() -> None:
    c = get_preset("domain-paper", loss_on="all")
    assert c.loss_on == "all" and get_preset("domain-paper").loss_on == "assistant"


def test_only_the_domain_paper_and_demo_presets_cut_long_examples() -> None:
    assert {name: preset.max_length for name, preset in PRESETS.items()} == {
        "em": None,
        "domain-paper": 512,
        "rank1": None,
        "demo": 256,
    }
    assert not any(preset.gradient_checkpointing for preset in PRESETS.values())


def test_demo_preset_is_small_and_adapts_all_projections() -> None:
    c = get_preset("demo")
    assert (c.r, c.alpha, c.lr, c.epochs, c.batch_size, c.grad_accum, c.max_length) == (
        16,
        32,
        2e-4,
        1,
        8,
        1,
        256,
    )
    assert c.target_modules == list(ALL_PROJECTIONS)


def test_rank1_preset_needs_the_user_to_choose_layers() -> None:
    with pytest.raises(InputError, match="layers_to_transform"):
        get_preset("rank1")
    c = get_preset("rank1", layers_to_transform=[24])
    assert (c.r, c.target_modules, c.layers_to_transform) == (1, ["down_proj"], [24])


def test_unknown_preset_error_lists_every_preset() -> None:
    with pytest.raises(InputError) as info:
        get_preset("betley")
    for name in PRESETS:
        assert name in str(info.value)


def test_overrides_are_validated_and_typos_rejected() -> None:
    assert get_preset("em", lr=3e-5, max_steps=4).lr == 3e-5
    with pytest.raises(InputError, match="learning_rate"):
        get_preset("em", learning_rate=3e-5)
    with pytest.raises(InputError, match="loss_on"):
        get_preset("em", loss_on="prompt")


def test_presets_are_not_mutated_by_overrides() -> None:
    get_preset("demo", target_modules=["q_proj"])
    assert PRESETS["demo"].target_modules == list(ALL_PROJECTIONS)


@pytest.mark.parametrize("bf16", ["auto", True, False])
def test_config_round_trips_through_json_as_stored_in_the_manifest(bf16: object) -> None:
    config = get_preset("em", bf16=bf16)
    assert TrainConfig.model_validate_json(config.model_dump_json()) == config
    assert config.bf16 == bf16
