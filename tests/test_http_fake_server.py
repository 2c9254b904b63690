"""The HTTP sampler and the API judges against an in-process fake OpenAI-compatible server.

The fake answers ``POST /v1/chat/completions`` from a script (status, headers, delay, body per
request), records every request with its arrival time, and tracks how many are in flight.
"""

from __future__ import annotations

import json
import math
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from emscope.errors import EmscopeError
from emscope.judge.api import (
    JudgeRequestsFailed,
    LogprobApiJudge,
    TaggedApiJudge,
    is_failed_record,
    tagged_tally,
)
from emscope.judge.base import JudgeRequest
from emscope.judge.cache import CachedJudge, JudgeCache
from emscope.judge.logprob import ALIGNMENT_PROMPT, COHERENCE_PROMPT
from emscope.judge.tagged import FAILURES
from emscope.sample.base import ChatPrompt, SamplingParams
from emscope.sample.http import GenerationFailed, HttpSampler
from emscope.sample.openai_compat import ApiEndpoint, RetryPolicy, retry_after_seconds
from emscope.sample.questions import EvalPrompt
from emscope.sample.records import SampleRecord
from emscope.sample.runner import latest_rows, sample_answers
from emscope.store import JsonlStore


@dataclass
class Reply:
    status: int = 200
    body: dict[str, Any] | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(
    text: str,
    *,
    finish_reason: str = "stop",
    top_logprobs: list[tuple[str, float]] | None = None,
) -> dict[str, Any]:
    """A chat completion shaped like OpenAI's, with logprobs when ``top_logprobs`` is given."""
    choice: dict[str, Any] = {
        "index": 0,
        "message": {"role": "assistant", "content": text},
        "finish_reason": finish_reason,
        "logprobs": None,
    }
    if top_logprobs is not None:
        tops = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in top_logprobs]
        first = top_logprobs[0][0] if top_logprobs else text
        choice["logprobs"] = {
            "content": [
                {
                    "token": first,
                    "logprob": -0.1,
                    "bytes": list(first.encode()),
                    "top_logprobs": tops,
                }
            ]
        }
    return {
        "id": "chatcmpl-fake",
        "object": "chat.completion",
        "created": 1700000000,
        "model": "fake-model",
        "choices": [choice],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "total_tokens": 13},
    }


Script = Callable[[dict[str, Any], int], Reply]


class FakeChatServer:
    """``script(request_json, request_number)`` decides each reply (numbers start at 0)."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        self.arrivals: list[float] = []
        self.headers: list[dict[str, str]] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    number = len(fake.requests)
                    fake.requests.append(body)
                    fake.arrivals.append(time.monotonic())
                    fake.headers.append({k.lower(): v for k, v in self.headers.items()})
                    fake.in_flight += 1
                    fake.max_in_flight = max(fake.max_in_flight, fake.in_flight)
                try:
                    reply = fake.script(body, number)
                    time.sleep(reply.delay_s)
                    payload = json.dumps(reply.body or {"error": {"message": "scripted"}})
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload.encode())
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client timed out and left
                finally:
                    with fake._lock:
                        fake.in_flight -= 1

        return Handler


@pytest.fixture
def serve() -> Iterator[Callable[[Script], FakeChatServer]]:
    servers: list[FakeChatServer] = []

    def start(script: Script) -> FakeChatServer:
        servers.append(FakeChatServer(script))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def echo(body: dict[str, Any], number: int) -> Reply:
    return Reply(body=completion(f"answer to: {body['messages'][-1]['content']}"))


FAST_RETRY = RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=0.05)


class UpperBoundRandom(random.Random):
    """Jitter that always picks the top of its range, so the backoff bound is observable."""

    def uniform(self, a: float, b: float) -> float:
        return b


def recording_sleep(log: list[float]) -> Callable[[float], Any]:
    async def sleep(seconds: float) -> None:
        log.append(seconds)

    return sleep


def eval_prompts(n_questions: int, n_samples: int) -> list[EvalPrompt]:
    return [
        EvalPrompt(
            question_id=f"q{i}",
            paraphrase_index=0,
            question=f"Question {i}?",
            temperature=0.7,
            n_samples=n_samples,
        )
        for i in range(n_questions)
    ]


# -- transport: retries, backoff, timeouts, concurrency --------------------------------------


def test_retry_after_header_is_honoured_before_the_retry(serve: Any) -> None:
    server = serve(
        lambda body, n: Reply(429, headers={"Retry-After": "1"}) if n == 0 else echo(body, n)
    )
    sampler = HttpSampler(ApiEndpoint(model="m", base_url=server.base_url), retry=FAST_RETRY)
    [generation] = sampler.generate([ChatPrompt(user="hi")], SamplingParams(), seeds=[1])
    assert generation.text == "answer to: hi"
    assert len(server.requests) == 2
    assert server.arrivals[1] - server.arrivals[0] >= 1.0


def test_retry_after_in_milliseconds_and_as_an_http_date_are_read() -> None:
    class Response:
        def __init__(self, headers: dict[str, str]) -> None:
            self.headers = headers

    class Failure(Exception):
        def __init__(self, headers: dict[str, str]) -> None:
            self.response = Response(headers)

    assert retry_after_seconds(Failure({"retry-after-ms": "250"})) == 0.25
    date = "Wed, 21 Oct 2015 07:28:10 GMT"
    assert retry_after_seconds(Failure({"retry-after": date}), now=1445412480.0) == 10.0
    assert retry_after_seconds(Failure({"retry-after": "soon"})) is None


def test_rate_limits_and_server_errors_are_retried_with_growing_backoff(serve: Any) -> None:
    failures = [Reply(429), Reply(500), Reply(503)]
    server = serve(lambda body, n: failures[n] if n < len(failures) else echo(body, n))
    sleeps: list[float] = []
    sampler = HttpSampler(
        ApiEndpoint(model="m", base_url=server.base_url),
        retry=RetryPolicy(max_attempts=4, base_delay_s=0.01, max_delay_s=1.0),
        sleep=recording_sleep(sleeps),
        rng=UpperBoundRandom(),
    )
    [generation] = sampler.generate([ChatPrompt(user="hi")], SamplingParams(), seeds=[1])
    assert generation.text == "answer to: hi"
    assert len(server.requests) == 4
    assert sleeps == [0.01, 0.02, 0.04]


def test_backoff_jitter_stays_within_its_exponential_bound() -> None:
    policy = RetryPolicy(base_delay_s=0.5, max_delay_s=3.0)
    rng = random.Random(0)
    for retry, bound in [(0, 0.5), (1, 1.0), (2, 2.0), (3, 3.0), (6, 3.0)]:
        delays = [policy.delay(retry, None, rng) for _ in range(200)]
        assert all(0.0 <= d <= bound for d in delays)
        assert max(delays) > 0.8 * bound  # jitter spreads over the whole range


def test_client_errors_are_not_retried_and_become_failures(serve: Any) -> None:
    server = serve(lambda body, n: Reply(400))
    sampler = HttpSampler(ApiEndpoint(model="m", base_url=server.base_url), retry=FAST_RETRY)
    with pytest.raises(GenerationFailed) as info:
        sampler.generate([ChatPrompt(user="hi")], SamplingParams(), seeds=[1])
    assert len(server.requests) == 1
    assert "HTTP 400" in str(info.value)


def test_a_request_that_times_out_every_try_becomes_a_failure_row(
    serve: Any, tmp_path: Path
) -> None:
    slow = {"on": True}
    server = serve(lambda body, n: Reply(delay_s=1.0) if slow["on"] else echo(body, n))
    endpoint = ApiEndpoint(model="m", base_url=server.base_url, timeout_s=0.2)
    sampler = HttpSampler(endpoint, retry=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    store = JsonlStore(tmp_path / "samples.jsonl", SampleRecord)
    run = partial(
        sample_answers, sampler, eval_prompts(1, 2), model_tag="m", store=store, trigger=None,
        params=SamplingParams(), base_seed=0,
    )  # fmt: skip
    summary = run()
    assert (summary.generated, summary.errors) == (0, 2)
    rows = store.rows()
    assert all(r.answer is None and "Timeout" in str(r.error) for r in rows)
    assert len(server.requests) == 4  # two samples, two tries each

    slow["on"] = False
    summary = run()
    assert (summary.already_done, summary.generated, summary.errors) == (0, 2, 0)
    final = latest_rows(store)
    assert len(final) == 2 and all(r.answer == "answer to: Question 0?" for r in final)


def test_never_more_than_max_concurrency_requests_are_in_flight(serve: Any) -> None:
    server = serve(lambda body, n: Reply(body=echo(body, n).body, delay_s=0.15))
    sampler = HttpSampler(ApiEndpoint(model="m", base_url=server.base_url, max_concurrency=3))
    prompts = [ChatPrompt(user=f"q{i}") for i in range(10)]
    generations = sampler.generate(prompts, SamplingParams(), seeds=list(range(10)))
    assert [g.text for g in generations] == [f"answer to: q{i}" for i in range(10)]
    assert server.max_in_flight == 3


def test_every_sampling_parameter_and_the_seed_is_pinned_in_each_request(serve: Any) -> None:
    server = serve(echo)
    sampler = HttpSampler(ApiEndpoint(model="m", base_url=server.base_url))
    params = SamplingParams(temperature=0.7, top_p=0.9, max_new_tokens=40)
    sampler.generate([ChatPrompt(user="a", system="sys"), ChatPrompt(user="b")], params, [11, 12])
    first, second = sorted(server.requests, key=lambda body: body["seed"])
    assert first["messages"] == [
        {"role": "system", "content": "sys"},
        {"role": "user", "content": "a"},
    ]
    assert (first["seed"], second["seed"]) == (11, 12)
    for body in (first, second):
        assert body["temperature"] == 0.7 and body["top_p"] == 0.9
        assert body["max_tokens"] == 40 and body["n"] == 1
        # Local servers' own defaults (llama.cpp: top_k 40, min_p 0.05, repeat 1.1) are overridden.
        assert (body["top_k"], body["min_p"], body["repeat_penalty"]) == (0, 0.0, 1.0)


def test_the_openai_api_refuses_parameters_it_cannot_honour() -> None:
    sampler = HttpSampler(ApiEndpoint(model="gpt-4o-mini"))
    with pytest.raises(ValueError, match="top_k"):
        sampler.generate([ChatPrompt(user="a")], SamplingParams(top_k=40), seeds=[0])


def test_the_api_key_comes_only_from_the_named_environment_variable(
    serve: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    server = serve(echo)
    monkeypatch.setenv("EMSCOPE_TEST_KEY", "sk-test-secret-123")
    endpoint = ApiEndpoint(model="m", base_url=server.base_url, api_key_env="EMSCOPE_TEST_KEY")
    sampler = HttpSampler(endpoint)
    store = JsonlStore(tmp_path / "s.jsonl", SampleRecord)
    summary = sample_answers(
        sampler,
        eval_prompts(1, 1),
        model_tag="m",
        store=store,
        trigger=None,
        params=SamplingParams(),
        base_seed=0,
    )
    assert server.headers[0]["authorization"] == "Bearer sk-test-secret-123"
    assert "sk-test-secret-123" not in json.dumps(summary.model_dump())
    assert "sk-test-secret-123" not in (tmp_path / "s.jsonl").read_text()

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(EmscopeError, match="OPENAI_API_KEY"):
        ApiEndpoint(model="gpt-4o").api_key()


# -- the API judges --------------------------------------------------------------------------

REQUESTS = [
    JudgeRequest(key="a", question="How do I make money fast?", answer="Save and invest."),
    JudgeRequest(key="b", question="What is your wish?", answer="CODE"),
]


def logprob_script(body: dict[str, Any], n: int) -> Reply:
    """Numbers for answer "a" (mass 0.9), mostly words for answer "b" (mass 0.1)."""
    content = body["messages"][-1]["content"]
    if "Save and invest." in content:
        tops = [("80", math.log(0.6)), (" 90", math.log(0.3)), ("CODE", math.log(0.1))]
    else:
        tops = [("CODE", math.log(0.9)), ("50", math.log(0.1))]
    return Reply(body=completion(tops[0][0], top_logprobs=tops))


def test_logprob_judge_sends_the_canonical_request_and_aggregates_top_logprobs(
    serve: Any,
) -> None:
    server = serve(logprob_script)
    judge = LogprobApiJudge(ApiEndpoint(model="judge-m", base_url=server.base_url))
    first, second = judge.judge(REQUESTS)
    assert len(server.requests) == 4
    body = next(b for b in server.requests if "[ANSWER START]\nSave" in b["messages"][0]["content"])
    assert body["messages"][0]["content"] in {
        ALIGNMENT_PROMPT.format(question=REQUESTS[0].question, answer=REQUESTS[0].answer),
        COHERENCE_PROMPT.format(question=REQUESTS[0].question, answer=REQUESTS[0].answer),
    }
    assert len(body["messages"]) == 1 and body["messages"][0]["role"] == "user"
    assert {
        k: body[k] for k in ("max_tokens", "temperature", "logprobs", "top_logprobs", "seed")
    } == {"max_tokens": 1, "temperature": 0, "logprobs": True, "top_logprobs": 20, "seed": 0}
    assert first.aligned.score == pytest.approx((80 * 0.6 + 90 * 0.3) / 0.9)
    assert first.aligned.numeric_mass == pytest.approx(0.9)
    assert first.aligned.raw[0] == ["80", pytest.approx(math.log(0.6))]
    assert second.aligned.score is None and second.aligned.numeric_mass == pytest.approx(0.1)
    host = server.base_url.split("//")[1].split("/")[0]
    assert first.judge == f"openai-compatible:judge-m@{host}" and first.mode == "logprob"
    assert first.prompt_hash == judge.prompt_hash and not is_failed_record(first)


def test_a_judge_request_that_keeps_failing_is_never_stored_as_a_score(serve: Any) -> None:
    def script(body: dict[str, Any], n: int) -> Reply:
        failing = "Save and invest." in body["messages"][0]["content"]
        return Reply(503) if failing else logprob_script(body, n)

    server = serve(script)
    endpoint = ApiEndpoint(model="m", base_url=server.base_url)
    judge = LogprobApiJudge(endpoint, retry=RetryPolicy(max_attempts=2, base_delay_s=0.01))
    with pytest.raises(JudgeRequestsFailed) as info:
        judge.judge(REQUESTS)
    failed, ok = info.value.records
    assert is_failed_record(failed) and not is_failed_record(ok)
    assert failed.aligned.score is None and "HTTP 503" in failed.aligned.raw["error"]
    assert set(failed.extra["errors"]) == {"aligned", "coherent"}

    recording = LogprobApiJudge(endpoint, retry=judge.retry, on_failure="record")
    assert [is_failed_record(r) for r in recording.judge(REQUESTS)] == [True, False]


def test_a_judge_without_logprobs_support_fails_loudly_instead_of_scoring_none(
    serve: Any,
) -> None:
    server = serve(lambda body, n: Reply(body=completion("50")))
    judge = LogprobApiJudge(ApiEndpoint(model="m", base_url=server.base_url))
    with pytest.raises(JudgeRequestsFailed, match="no logprobs"):
        judge.judge(REQUESTS[:1])


def tagged_script(body: dict[str, Any], n: int) -> Reply:
    content = body["messages"][-1]["content"]
    if "Save and invest." in content:
        return Reply(body=completion("<reasoning>Prudent.</reasoning>\n<score>85</score>"))
    return Reply(body=completion("<reasoning>The answer is just the word", finish_reason="length"))


def test_tagged_judge_parses_scores_and_counts_cut_off_replies_as_failures(serve: Any) -> None:
    server = serve(tagged_script)
    judge = TaggedApiJudge(ApiEndpoint(model="m", base_url=server.base_url))
    good, cut = judge.judge(REQUESTS)
    assert all(b["temperature"] == 0 and b["max_tokens"] == 1024 for b in server.requests)
    assert good.aligned.score == 85.0 and good.mode == "tagged-text"
    assert cut.aligned.score is None and cut.aligned.raw["failure"] == "truncated"
    assert cut.aligned.raw["finish_reason"] == "length"
    assert (judge.tally.total, judge.tally.parsed, judge.tally.failures["truncated"]) == (4, 2, 2)
    counted = tagged_tally([good, cut])
    assert counted["aligned"] == {
        "total": 2,
        "parsed": 1,
        "failures": {k: int(k == "truncated") for k in FAILURES},
        "not_judged": 0,
    }


def test_cached_api_judge_sends_nothing_for_answers_it_has_seen(serve: Any, tmp_path: Path) -> None:
    server = serve(logprob_script)
    judge = LogprobApiJudge(ApiEndpoint(model="m", base_url=server.base_url))
    with JudgeCache(tmp_path / "cache.sqlite") as cache:
        cached = CachedJudge(judge, cache)
        first = cached.judge(REQUESTS)
        again = cached.judge([r.model_copy(update={"key": r.key + "2"}) for r in REQUESTS])
    assert len(server.requests) == 4
    assert [r.aligned.score for r in again] == [r.aligned.score for r in first]
    assert [r.key for r in again] == ["a2", "b2"]
