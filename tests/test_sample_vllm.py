from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from emscope.errors import EmscopeError
from emscope.models.refs import ModelRef
from emscope.sample import vllm_backend
from emscope.sample.adapters import AdapterRegistry
from emscope.sample.base import ChatPrompt, SamplingParams


def test_vllm_params_pin_every_sampling_parameter_and_the_seed() -> None:
    params = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=400)
    pinned = vllm_backend.vllm_sampling_params(params, seed=11)
    assert pinned == {
        "n": 1,
        "temperature": 0.7,
        "top_p": 0.9,
        "top_k": -1,
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "max_tokens": 400,
        "seed": 11,
    }


def test_missing_vllm_is_a_clear_error_not_a_silent_fallback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(vllm_backend, "vllm_available", lambda: False)
    with pytest.raises(EmscopeError, match="pip install vllm"):
        vllm_backend.VllmSampler("some/model")


def test_generations_come_back_in_prompt_order_with_finish_reasons(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}

    class FakeEngine:
        def chat(self, messages: list[Any], sampling: list[Any], **kwargs: Any) -> list[Any]:
            seen["messages"], seen["sampling"], seen["kwargs"] = messages, sampling, kwargs
            return [
                SimpleNamespace(
                    outputs=[
                        SimpleNamespace(
                            text=f"a{i}",
                            token_ids=[1] * (i + 1),
                            finish_reason="length" if i else "stop",
                        )
                    ]
                )
                for i in range(len(messages))
            ]

    fake_vllm = SimpleNamespace(SamplingParams=lambda **kw: kw)
    monkeypatch.setattr(vllm_backend, "require_vllm", lambda: fake_vllm)
    sampler = vllm_backend.VllmSampler("m", engine=FakeEngine())
    out = sampler.generate(
        [ChatPrompt(user="q0", system="s"), ChatPrompt(user="q1")], SamplingParams(), seeds=[5, 6]
    )
    assert [(g.text, g.n_new_tokens, g.finish_reason) for g in out] == [
        ("a0", 1, "stop"),
        ("a1", 2, "length"),
    ]
    assert seen["messages"][0][0] == {"role": "system", "content": "s"}
    assert [s["seed"] for s in seen["sampling"]] == [5, 6]
    assert seen["kwargs"]["lora_request"] is None


class FakeTokenizer:
    """Renders a chat as 'role:content|' pieces and tokenizes one id per character."""

    chat_template = "{{ fake }}"
    eos_token_id = 2

    def apply_chat_template(self, messages: list[dict[str, str]], **kwargs: Any) -> str:
        assert kwargs == {"tokenize": False, "add_generation_prompt": True}
        return "".join(f"{m['role']}:{m['content']}|" for m in messages) + "assistant:"

    def __call__(self, text: str, add_special_tokens: bool) -> dict[str, list[int]]:
        assert add_special_tokens is False
        return {"input_ids": [ord(c) for c in text]}

    def get_added_vocab(self) -> dict[str, int]:
        return {"<|im_end|>": 7, "<|unrelated|>": 9}


class FakeLLM:
    """The slice of ``vllm.LLM`` the multi-LoRA engine uses; answers name the request's LoRA."""

    def __init__(self, reverse: bool = False) -> None:
        self.reverse = reverse
        self.calls: list[dict[str, Any]] = []

    def get_tokenizer(self) -> FakeTokenizer:
        return FakeTokenizer()

    def generate(
        self,
        prompts: list[Any],
        sampling_params: Any = None,
        *,
        use_tqdm: bool = True,
        lora_request: Any = None,
    ) -> list[Any]:
        self.calls.append({"prompts": prompts, "sampling": sampling_params, "lora": lora_request})
        outs = [
            SimpleNamespace(
                prompt_token_ids=p["prompt_token_ids"],
                outputs=[
                    SimpleNamespace(
                        text=f"{lora.lora_name if lora else 'base'}/{s['seed']}",
                        token_ids=[5, 5, 7],
                        finish_reason="stop",
                    )
                ],
            )
            for p, s, lora in zip(prompts, sampling_params, lora_request, strict=True)
        ]
        return outs[::-1] if self.reverse else outs


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        vllm_backend, "require_vllm", lambda: SimpleNamespace(SamplingParams=lambda **kw: kw)
    )
    monkeypatch.setattr(
        vllm_backend,
        "lora_request_class",
        lambda: (
            lambda name, index, path: SimpleNamespace(
                lora_name=name, lora_int_id=index, lora_path=path
            )
        ),
    )


def lora_dir(root: Path, name: str, rank: int) -> Path:
    path = root / name
    path.mkdir()
    (path / "adapter_config.json").write_text(json.dumps({"r": rank}))
    return path


def registry(tmp_path: Path) -> AdapterRegistry:
    base = ModelRef(kind="local", name=str(tmp_path / "base"))
    refs = [base.with_adapter(lora_dir(tmp_path, f"ad{i}", r)) for i, r in enumerate([8, 32, 20])]
    return AdapterRegistry.from_refs([*refs, base])


def test_the_engine_holds_every_adapter_with_slots_for_all_and_the_real_rank(
    tmp_path: Path,
) -> None:
    reg = registry(tmp_path)
    kwargs = vllm_backend.vllm_engine_kwargs(reg)
    assert kwargs["enable_lora"] is True
    assert (kwargs["max_loras"], kwargs["max_cpu_loras"], kwargs["max_lora_rank"]) == (3, 3, 32)
    assert kwargs["model"] == kwargs["tokenizer"] == str(tmp_path / "base")
    capped = vllm_backend.vllm_engine_kwargs(reg, max_loras=2)
    assert (capped["max_loras"], capped["max_cpu_loras"]) == (2, 3)
    assert vllm_backend.vllm_lora_rank(20) == 32 and vllm_backend.vllm_lora_rank(1) == 1
    with pytest.raises(EmscopeError, match="above vLLM's largest"):
        vllm_backend.vllm_lora_rank(600)
    base_only = AdapterRegistry.from_refs([ModelRef(kind="local", name="/m")])
    assert "enable_lora" not in vllm_backend.vllm_engine_kwargs(base_only)


def test_requests_carry_each_prompts_seed_stop_tokens_and_lora(
    tmp_path: Path, fake_vllm: None
) -> None:
    engine = vllm_backend.VllmMultiEngine(registry(tmp_path), engine=FakeLLM())
    assert [(r.lora_name, r.lora_int_id) for r in engine.lora_requests.values()] == [
        ("a0", 1),
        ("a1", 2),
        ("a2", 3),
    ]
    assert engine.lora_requests["a1"].lora_path == str(tmp_path / "ad1")
    prompts = [ChatPrompt(user="hi", system="s"), ChatPrompt(user="yo"), ChatPrompt(user="q")]
    tokens, sampling, loras = engine.build_requests(
        prompts, SamplingParams(max_new_tokens=9), [4, 5, 6], ["a2", None, "a0"]
    )
    assert tokens[0]["prompt_token_ids"] == [ord(c) for c in "system:s|user:hi|assistant:"]
    assert [s["seed"] for s in sampling] == [4, 5, 6]
    assert all(s["stop_token_ids"] == [2, 7] and s["max_tokens"] == 9 for s in sampling)
    assert [lo.lora_name if lo else None for lo in loras] == ["a2", None, "a0"]
    with pytest.raises(ValueError, match="unknown adapters"):
        engine.build_requests(prompts[:1], SamplingParams(), [1], ["zz"])


def test_results_map_back_to_their_prompts_and_feed_each_models_store(
    tmp_path: Path, fake_vllm: None
) -> None:
    from emscope.sample.many import ModelShare, sample_many
    from emscope.sample.questions import EvalPrompt
    from emscope.sample.records import SampleRecord
    from emscope.sample.runner import latest_rows
    from emscope.store import JsonlStore

    reg = registry(tmp_path)
    fake = FakeLLM()
    engine = vllm_backend.VllmMultiEngine(reg, engine=fake, batch_size=100)
    assert engine.info()["per_row_seeds"] is True
    out = engine.generate_mixed(
        [ChatPrompt(user="a"), ChatPrompt(user="b")], SamplingParams(), [1, 2], ["a1", None]
    )
    assert [(g.text, g.n_new_tokens, g.finish_reason) for g in out] == [
        ("a1/1", 3, "stop"),
        ("base/2", 3, "stop"),
    ]
    question = [
        EvalPrompt(question_id="q", paraphrase_index=0, question="Q?", temperature=1.0, n_samples=2)
    ]
    refs = [ModelRef(kind="local", name=reg.base.name, adapter=p) for p in reg.adapters.values()]
    shares = [
        ModelShare(
            f"m{i}", ref, question, JsonlStore(tmp_path / f"m{i}.jsonl", SampleRecord), None, 0
        )
        for i, ref in enumerate([*refs, reg.base])
    ]
    sample_many(engine, reg, shares, params=SamplingParams())
    assert len(fake.calls) == 2 and len(fake.calls[1]["prompts"]) == 8  # every model at once
    for share, name in zip(shares, ["a0", "a1", "a2", "base"], strict=True):
        rows = latest_rows(share.store)
        assert [r.answer for r in rows] == [f"{name}/{r.seed}" for r in rows] and len(rows) == 2


def test_outputs_out_of_prompt_order_are_an_error(tmp_path: Path, fake_vllm: None) -> None:
    engine = vllm_backend.VllmMultiEngine(registry(tmp_path), engine=FakeLLM(reverse=True))
    with pytest.raises(RuntimeError, match="out of prompt order"):
        engine.generate_mixed(
            [ChatPrompt(user="a"), ChatPrompt(user="b")], SamplingParams(), [1, 2], [None, None]
        )


def test_the_registry_builds_one_multi_lora_engine_for_a_studys_models(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, fake_vllm: None
) -> None:
    from emscope.sample.registry import VLLM_SUBMIT, make_shared_engine

    built: list[dict[str, Any]] = []

    def llm(**kwargs: Any) -> FakeLLM:
        built.append(kwargs)
        return FakeLLM()

    fake = SimpleNamespace(SamplingParams=lambda **kw: kw, LLM=llm)
    monkeypatch.setattr(vllm_backend, "require_vllm", lambda: fake)
    reg = registry(tmp_path)
    engine = make_shared_engine("vllm", reg, batch_size=32)
    assert isinstance(engine, vllm_backend.VllmMultiEngine)
    assert engine.batch_size == VLLM_SUBMIT  # vLLM gets thousands of requests at a time
    (kwargs,) = built
    assert (kwargs["max_loras"], kwargs["max_cpu_loras"], kwargs["max_lora_rank"]) == (3, 3, 32)
    with pytest.raises(EmscopeError, match="cannot hold several models"):
        make_shared_engine("openai", reg, batch_size=1)
