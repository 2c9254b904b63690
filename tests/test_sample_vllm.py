from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from emscope.errors import EmscopeError
from emscope.sample import vllm_backend
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
