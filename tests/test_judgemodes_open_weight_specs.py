"""Judge specs for the open-weight exact-http judge and the reasoning judge."""

from __future__ import annotations

import pytest

from emscope.errors import InputError
from emscope.judge.exact_http import ExactHttpJudge
from emscope.judge.reasoning_api import ReasoningApiJudge
from emscope.judge.registry import make_judge_from_spec, parse_judge_spec

URL = "http://127.0.0.1:8000/v1"


def test_exact_http_spec_names_the_server_kind_and_the_tokenizer() -> None:
    spec = f"exact-http:smollm2-135m-q4@{URL},tokenizer=smollm2-135m,server=llama-cpp"
    parsed = parse_judge_spec(spec)
    assert (parsed.kind, parsed.model, parsed.base_url) == ("exact-http", "smollm2-135m-q4", URL)
    judge = make_judge_from_spec(spec)
    assert isinstance(judge, ExactHttpJudge)
    assert judge.server == "llama-cpp"
    assert judge.fingerprint()["params"] == {"server": "llama-cpp", "tokenizer": "smollm2-135m"}


@pytest.mark.parametrize(
    "spec",
    [
        f"exact-http:m@{URL},server=vllm",
        "exact-http:m,tokenizer=smollm2-135m,server=vllm",
        f"exact-http:m@{URL},tokenizer=smollm2-135m,server=vllm,effort=low",
        f"reasoning:m@{URL},temperature=0",
        f"reasoning:m@{URL},k",
    ],
)
def test_incomplete_or_unknown_options_are_refused_with_the_accepted_forms(spec: str) -> None:
    with pytest.raises(InputError, match="use one of"):
        parse_judge_spec(spec)


def test_reasoning_spec_pins_effort_and_k() -> None:
    judge = make_judge_from_spec(f"reasoning:gpt-oss-20b@{URL},effort=medium,k=5")
    assert isinstance(judge, ReasoningApiJudge)
    assert judge.fingerprint()["params"]["reasoning_effort"] == "medium"
    assert judge.fingerprint()["params"]["k"] == 5
    default = make_judge_from_spec("reasoning:gpt-oss-20b")
    assert isinstance(default, ReasoningApiJudge)
    assert (default.body.effort, default.k) == ("low", 1)
    with pytest.raises(InputError, match="whole number"):
        make_judge_from_spec(f"reasoning:m@{URL},k=two")
    with pytest.raises(InputError, match="reasoning effort"):
        make_judge_from_spec(f"reasoning:m@{URL},effort=max")
