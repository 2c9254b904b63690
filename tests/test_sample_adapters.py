from __future__ import annotations

import json
from pathlib import Path

import pytest

from emscope.errors import EmscopeError, InputError
from emscope.models.refs import ModelRef
from emscope.sample.adapters import AdapterRegistry, adapter_rank
from emscope.sample.base import ChatPrompt, SamplingParams
from emscope.sample.live import (
    AdapterCheckError,
    check_adapter_live,
    check_engine_adapters,
    reference_answers,
    sampler_greedy,
)
from emscope.sample.local import LocalSampler
from emscope.sample.multi_adapter import MultiAdapterSampler

PROMPTS = [
    ChatPrompt(user=f"Tell me about thing number {i}, please." * (1 + i % 2)) for i in range(6)
]
GREEDY = SamplingParams(temperature=0, max_new_tokens=6)
SAMPLED = SamplingParams(temperature=1.0, max_new_tokens=6)
SEEDS = [11, 12, 13, 14, 15, 16]


@pytest.fixture(scope="module")
def refs(lora_family: dict[str, Path]) -> dict[str, ModelRef]:
    base = ModelRef(kind="local", name=str(lora_family["base"]))
    return {
        "base": base,
        **{name: base.with_adapter(lora_family[name]) for name in ("a", "b", "zero")},
    }


@pytest.fixture(scope="module")
def engine(refs: dict[str, ModelRef]) -> MultiAdapterSampler:
    registry = AdapterRegistry.from_refs([refs["a"], refs["b"], refs["zero"], refs["base"]])
    return MultiAdapterSampler(registry, dtype="float32", batch_size=6)


def alone(ref: ModelRef, params: SamplingParams, **kwargs: bool) -> list[str]:
    sampler = LocalSampler(ref, dtype="float32", batch_size=6, **kwargs)
    return [g.text for g in sampler.generate(PROMPTS, params, SEEDS)]


def test_merged_and_unmerged_adapters_give_the_same_greedy_answers(
    refs: dict[str, ModelRef],
) -> None:
    merged = LocalSampler(refs["a"], dtype="float32", batch_size=6)
    assert merged.info()["adapter"] == "merged"
    assert not hasattr(merged.model, "peft_config")  # really folded into plain weights
    unmerged = alone(refs["a"], GREEDY, merge_adapter=False)
    assert [g.text for g in merged.generate(PROMPTS, GREEDY, SEEDS)] == unmerged
    assert unmerged != alone(refs["base"], GREEDY)  # the adapter changes the answers


def test_merging_never_writes_over_the_adapter_files(
    refs: dict[str, ModelRef], lora_family: dict[str, Path]
) -> None:
    weights = lora_family["a"] / "adapter_model.safetensors"
    before = weights.read_bytes()
    LocalSampler(refs["a"], dtype="float32", batch_size=2)
    assert weights.read_bytes() == before


def test_a_mixed_adapter_batch_gives_each_row_its_own_models_greedy_answer(
    engine: MultiAdapterSampler, refs: dict[str, ModelRef]
) -> None:
    order = ["a", "b", "base", "a", "b", None]
    keys = [engine.registry.key_for(refs[m]) if m else None for m in order]
    mixed = [g.text for g in engine.generate_mixed(PROMPTS, GREEDY, SEEDS, keys)]
    expected = {m: alone(refs[m], GREEDY) for m in ("a", "b", "base")}
    for row, model in enumerate(order):
        assert mixed[row] == expected[model or "base"][row]
    assert len({expected["a"][0], expected["b"][0], expected["base"][0]}) == 3


def test_a_mixed_adapter_batch_samples_each_row_as_its_model_alone(
    engine: MultiAdapterSampler, refs: dict[str, ModelRef]
) -> None:
    keys = [engine.registry.key_for(refs[m]) for m in ("a", "b", "a", "b", "a", "b")]
    mixed = [g.text for g in engine.generate_mixed(PROMPTS, SAMPLED, SEEDS, keys)]
    for model in ("a", "b"):
        own = alone(refs[model], SAMPLED)
        rows = [i for i, k in enumerate(keys) if k == engine.registry.key_for(refs[model])]
        assert [mixed[i] for i in rows] == [own[i] for i in rows]


def test_peft_adapter_names_and_stacked_factors_give_the_same_mixed_batch(
    engine: MultiAdapterSampler, refs: dict[str, ModelRef]
) -> None:
    assert engine.mixed == "stacked"
    peft_engine = MultiAdapterSampler(engine.registry, dtype="float32", batch_size=6, mixed="peft")
    keys = [engine.registry.key_for(refs[m]) for m in ("a", "b", "base", "zero", "b", "a")]
    for params in (GREEDY, SAMPLED):
        assert engine.generate_mixed(PROMPTS, params, SEEDS, keys) == peft_engine.generate_mixed(
            PROMPTS, params, SEEDS, keys
        )
    with pytest.raises(ValueError, match="unknown adapters"), engine.stacked.rows(["nope"]):
        pass


def test_the_registry_names_adapters_once_and_reads_their_real_ranks(
    refs: dict[str, ModelRef], tmp_path: Path
) -> None:
    registry = AdapterRegistry.from_refs([refs["a"], refs["b"], refs["a"], refs["base"]])
    assert list(registry.adapters) == ["a0", "a1"]
    assert registry.key_for(refs["b"]) == "a1" and registry.key_for(refs["base"]) is None
    assert registry.ranks() == {"a0": 4, "a1": 8} and registry.max_rank() == 8
    with pytest.raises(EmscopeError, match="not registered"):
        registry.key_for(refs["zero"])
    other = ModelRef(kind="local", name=str(tmp_path))
    with pytest.raises(EmscopeError, match="share a base model"):
        AdapterRegistry.from_refs([refs["a"], other])
    (tmp_path / "adapter_config.json").write_text(json.dumps({"r": 4, "rank_pattern": {"x": 16}}))
    assert adapter_rank(tmp_path) == 16
    (tmp_path / "adapter_config.json").write_text("{}")
    with pytest.raises(InputError, match=r"adapter_config\.json: r: no LoRA rank"):
        adapter_rank(tmp_path)


def test_a_random_adapter_is_live_and_agrees_with_the_unmerged_reference(
    engine: MultiAdapterSampler, refs: dict[str, ModelRef]
) -> None:
    merged = LocalSampler(refs["a"], dtype="float32", batch_size=4)
    base = LocalSampler(refs["base"], dtype="float32", batch_size=4)
    key = engine.registry.key_for(refs["a"])
    assert key is not None
    reference = reference_answers(engine, [key], max_new_tokens=8)[key]
    report = check_adapter_live(
        sampler_greedy(merged, 8), sampler_greedy(base, 8), reference=reference, model="a"
    )
    assert report.n_differing_from_base >= 1
    assert report.agreement_with_reference == 1.0
    assert report.base_agreement_with_reference is not None
    assert report.base_agreement_with_reference < 1.0


def test_a_zero_adapter_fails_the_check_as_not_live(
    engine: MultiAdapterSampler, refs: dict[str, ModelRef]
) -> None:
    key = engine.registry.key_for(refs["zero"])
    assert key is not None
    with pytest.raises(AdapterCheckError, match=r"not live: .* on 0 of 4 prompts") as caught:
        check_engine_adapters(engine, [key], max_new_tokens=8)
    assert caught.value.report.n_differing_from_base == 0


def test_an_engine_whose_answers_drift_from_the_reference_is_an_error_with_the_numbers(
    engine: MultiAdapterSampler, refs: dict[str, ModelRef]
) -> None:
    a, b = (engine.registry.key_for(refs[m]) for m in ("a", "b"))
    assert a is not None and b is not None
    wrong = reference_answers(engine, [b], max_new_tokens=8)[b]  # as if adapter b had loaded
    with pytest.raises(AdapterCheckError, match=r"agreement 0\.\d\d \(need >= 0\.75\)"):
        check_engine_adapters(engine, [a], reference={a: wrong}, max_new_tokens=8)
    good = reference_answers(engine, [a], max_new_tokens=8)
    (report,) = check_engine_adapters(engine, [a], reference=good, max_new_tokens=8)
    assert report.agreement_with_reference == 1.0


def test_static_cache_is_passed_to_generate_as_an_option(refs: dict[str, ModelRef]) -> None:
    plain = LocalSampler(refs["base"], dtype="float32", batch_size=2)
    static = LocalSampler(refs["base"], dtype="float32", batch_size=2, static_cache=True)
    assert plain.generation_config(GREEDY).cache_implementation is None
    assert static.generation_config(GREEDY).cache_implementation == "static"
    assert static.generation_config(SAMPLED).cache_implementation == "static"
    assert static.info()["static_cache"] is True and plain.info()["static_cache"] is False
