"""The exact judge over HTTP: request bodies and reply mapping for vLLM and llama-cpp-python,
and the real llama.cpp server (SmolLM2 GGUF) against the in-process exact judge."""

from __future__ import annotations

import math
from typing import Any

import pytest

from emscope.judge.candidate_tree import build_tree, tree_logprobs
from emscope.judge.exact_http import (
    ExactHttpJudge,
    ServerLogprobError,
    llama_cpp_body,
    llama_cpp_suffix,
    vllm_body,
    vllm_logprobs,
)
from emscope.judge.exact_local import ExactLocalJudge, render_prompt
from emscope.models.refs import ModelRef
from emscope.sample.openai_compat import ApiEndpoint
from llama_server import MODEL_ALIAS, LlamaServer, llama_server

__all__ = ["llama_server"]

TEXT = "How many legs does a spider have? Reply with only a number from 0 to 100."


def test_vllm_request_sends_token_prompts_and_reads_each_candidates_prompt_logprobs() -> None:
    prompt, candidates = [1, 2, 3], [[7, 0], [7, 7, 0]]
    body = vllm_body("m", prompt, candidates)
    assert body == {
        "model": "m",
        "prompt": [[1, 2, 3, 7, 0], [1, 2, 3, 7, 7, 0]],
        "max_tokens": 1,
        "temperature": 0,
        "prompt_logprobs": 0,
    }

    def entries(ids: list[int], values: list[float]) -> list[Any]:
        return [None] + [
            {str(t): {"logprob": v, "rank": 1}} for t, v in zip(ids[1:], values, strict=True)
        ]

    reply = {
        "choices": [
            {"index": 1, "prompt_logprobs": entries(body["prompt"][1], [-1, -1, -0.5, -0.25, -2])},
            {"index": 0, "prompt_logprobs": entries(body["prompt"][0], [-1, -1, -0.5, -3])},
        ]
    }
    assert vllm_logprobs(reply, prompt, candidates) == [-3.5, -2.75]
    with pytest.raises(ServerLogprobError, match="is the server vLLM"):
        vllm_logprobs({"choices": [{"index": 0}, {"index": 1}]}, prompt, candidates)


def test_llama_cpp_reply_is_read_only_when_its_echoed_tokens_line_up() -> None:
    assert llama_cpp_body("m", "abc")["echo"] is True
    ids = [1, 5, 1, 6, 7, 8]  # BOS first and once more inside the prompt (chat turns)
    # Echoed: every token but the BOS ones, then the generated one (finish_reason "length").
    reply = {
        "choices": [
            {
                "finish_reason": "length",
                "logprobs": {"token_logprobs": [None, -0.5, -0.25, -2.0, -9.0]},
            }
        ]
    }
    assert llama_cpp_suffix(reply, ids, 2) == -2.25
    reply["choices"][0]["finish_reason"] = "stop"  # nothing generated: no trailing entry
    reply["choices"][0]["logprobs"]["token_logprobs"] = [None, -0.5, -0.25, -2.0]
    assert llama_cpp_suffix(reply, ids, 2) == -2.25
    with pytest.raises(ServerLogprobError, match="expected"):
        llama_cpp_suffix(reply, [9, *ids], 2)  # a prompt not starting with BOS


# llama-cpp-python echoes a prompt's logprobs in Python, sorting the vocabulary at every
# position (about 10 s a request for this prompt on a loaded 2-core machine), and the judge needs
# one request per candidate; the suite checks four candidates (the full distribution's agreement
# is in docs/judging-after-gpt4o.md).
NUMBERS = (0, 8, 70, 100)


def test_candidate_logprobs_over_the_llama_cpp_server_match_the_in_process_judge(
    llama_server: LlamaServer, smol_ref: ModelRef
) -> None:
    endpoint = ApiEndpoint(model=MODEL_ALIAS, base_url=llama_server.base_url, max_concurrency=1)
    remote = ExactHttpJudge(endpoint, smol_ref, "llama-cpp")
    local = ExactLocalJudge(smol_ref, batch_size=1)
    model, tokenizer, candidates = local.load()
    over_http = remote.candidate_logprobs(TEXT, NUMBERS)
    prompt = render_prompt(tokenizer, TEXT)
    in_process = tree_logprobs(model, [prompt], build_tree([candidates[k] for k in NUMBERS]))[0]
    pairs = dict(zip(NUMBERS, zip(over_http, in_process.tolist(), strict=True), strict=True))
    print(f"log P(candidate): llama.cpp server vs in-process: {pairs}")
    for number, (a, b) in pairs.items():
        assert abs(math.exp(a) - math.exp(b)) < 1e-3, number
        # The server computes with the Q4_1 weights and 8-bit-quantised activations, the
        # in-process model with the same weights de-quantised to fp32: unlikely answers differ
        # by up to about half a nat. A misaligned or mis-tokenised candidate is off by several.
        assert a == pytest.approx(b, abs=1.0), pairs
