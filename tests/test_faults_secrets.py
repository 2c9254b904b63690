"""Secrets under fault injection: keys go only to their provider, URL credentials never persist.

A recording chat server on 127.0.0.1 stands in for a foreign host. Every file the judge, its
cache and the sampler write under the test's folders is searched byte by byte for the secret.
"""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from emscope.cli import app
from emscope.commands.failures import set_debug
from emscope.judge.base import JudgeRequest
from emscope.judge.cache import JudgeCache
from emscope.judge.registry import make_judge_from_spec, parse_judge_spec
from emscope.manifest import Manifest, write_manifest
from emscope.sample.base import SamplingParams
from emscope.sample.http import HttpSampler
from emscope.sample.openai_compat import NO_KEY, ApiEndpoint, describe_error, split_key_env
from emscope.sample.records import SampleRecord
from emscope.sample.runner import sample_answers
from emscope.secrets import redact, strip_userinfo
from emscope.store import JsonlStore
from fault_checks import files_holding
from test_http_fake_server import FakeChatServer, Reply, completion, eval_prompts
from test_judgecli_compare import make_run

OPENAI_SECRET = "sk-openai-do-not-leak-0123456789"
PASSWORD = "Pa55-url-secret-98765"
REQUESTS = [JudgeRequest(key="a", question="How do I save money?", answer="Budget.")]


def numbers(body: dict[str, Any], n: int) -> Reply:
    """A logprob judge's reply (mass on 80) or a sampler's answer, whichever was asked."""
    if body.get("logprobs"):
        return Reply(body=completion("80", top_logprobs=[("80", math.log(0.9))]))
    return Reply(body=completion("an answer"))


@pytest.fixture
def server() -> Any:
    fake = FakeChatServer(numbers)
    yield fake
    fake.close()


@pytest.fixture(autouse=True)
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_SECRET)
    set_debug(False)


def with_credentials(base_url: str) -> str:
    return base_url.replace("http://", f"http://judge-user:{PASSWORD}@")


def test_a_spec_for_another_host_never_sends_the_openai_key(server: FakeChatServer) -> None:
    make_judge_from_spec(f"logprob:m@{server.base_url}").judge(REQUESTS)
    sent = [h.get("authorization", "") for h in server.headers]
    assert sent and all(OPENAI_SECRET not in h for h in sent)
    assert set(sent) == {f"Bearer {NO_KEY}"}


def test_a_spec_naming_its_key_variable_sends_that_key_only(
    server: FakeChatServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VLLM_KEY", "vllm-key-abcdef-1234")
    make_judge_from_spec(f"logprob:m@{server.base_url}#VLLM_KEY").judge(REQUESTS)
    assert {h["authorization"] for h in server.headers} == {"Bearer vllm-key-abcdef-1234"}

    monkeypatch.delenv("VLLM_KEY")
    with pytest.raises(Exception, match="VLLM_KEY"):
        make_judge_from_spec(f"logprob:m@{server.base_url}#VLLM_KEY").judge(REQUESTS)


def test_openai_itself_still_gets_the_openai_key() -> None:
    assert ApiEndpoint(model="gpt-4o").api_key() == OPENAI_SECRET
    assert ApiEndpoint(model="gpt-4o", base_url="https://api.openai.com/v1").api_key() == (
        OPENAI_SECRET
    )
    assert ApiEndpoint(model="m", base_url="https://other.example/v1").api_key() == NO_KEY


def test_url_credentials_go_as_basic_auth_to_that_host_and_nowhere_on_disk(
    server: FakeChatServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache_dir = tmp_path / "cache"
    monkeypatch.setenv("EMSCOPE_CACHE", str(cache_dir))
    run = make_run(tmp_path)
    spec = f"logprob:m@{with_credentials(server.base_url)}"
    result = CliRunner().invoke(app, ["judge", "compare", str(run), "--judge", spec])
    assert result.exit_code == 0, result.output
    assert PASSWORD not in result.output

    expected = "Basic " + base64.b64encode(f"judge-user:{PASSWORD}".encode()).decode()
    assert {h["authorization"] for h in server.headers} == {expected}
    assert (cache_dir / "judge-cache.sqlite").is_file()
    assert files_holding(PASSWORD, tmp_path) == []
    assert files_holding("judge-user", tmp_path) == []


def test_a_sampler_on_a_url_with_credentials_writes_none_of_them(
    server: FakeChatServer, tmp_path: Path
) -> None:
    endpoint = ApiEndpoint(model="m", base_url=with_credentials(server.base_url))
    sampler = HttpSampler(endpoint)
    store = JsonlStore(tmp_path / "samples.jsonl", SampleRecord)
    summary = sample_answers(
        sampler,
        eval_prompts(2, 1),
        model_tag="m",
        store=store,
        trigger=None,
        params=SamplingParams(),
        base_seed=0,
    )
    assert summary.generated == 2
    write_manifest(tmp_path, Manifest(kind="samples", config={"sampler": summary.sampler}))
    (tmp_path / "endpoint.json").write_text(endpoint.model_dump_json())
    assert files_holding(PASSWORD, tmp_path) == []
    assert PASSWORD not in repr(endpoint) and PASSWORD not in str(endpoint.info())
    assert endpoint.identity == f"openai-compatible:m@{server.base_url.split('/')[2]}"


def test_a_401_quoting_a_non_openai_key_prints_it_redacted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "tok-live-abcdef123456"
    monkeypatch.setenv("MYHOST_TOKEN", key)

    def refuse(body: dict[str, Any], n: int) -> Reply:
        message = f"Incorrect API key provided: {key}. You can find your key at example.org"
        return Reply(status=401, body={"error": {"message": message, "code": "invalid_api_key"}})

    fake = FakeChatServer(refuse)
    try:
        spec = f"logprob:m@{fake.base_url}#MYHOST_TOKEN"
        args = ["judge", "compare", str(make_run(tmp_path)), "--judge", spec, "--no-cache"]
        result = CliRunner().invoke(app, args)
    finally:
        fake.close()
    assert fake.headers[0]["authorization"] == f"Bearer {key}"
    assert result.exit_code == 2, result.output
    assert key not in result.output and "[redacted]" in result.output
    assert [line for line in result.output.splitlines() if line.startswith("error:")]
    assert "Traceback" not in result.output


def test_redaction_covers_key_variables_url_userinfo_and_openai_keys(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_abcdefghijklmnop")
    monkeypatch.setenv("SOME_PROVIDER_API_KEY", "prov-1234567890")
    text = (
        "failed: hf_abcdefghijklmnop prov-1234567890 http://u:p@10.0.0.1/v1 "
        f"sk-proj-xyz {OPENAI_SECRET}"
    )
    cleaned = redact(text)
    for secret in ("hf_abcdefghijklmnop", "prov-1234567890", "u:p@", "sk-proj-xyz", OPENAI_SECRET):
        assert secret not in cleaned
    assert describe_error(ValueError(text)) == f"ValueError: {cleaned}"


def test_spec_parsing_splits_the_key_variable_and_keeps_bad_urls_out_of_errors() -> None:
    assert split_key_env("http://127.0.0.1:8000/v1#VLLM_KEY") == (
        "http://127.0.0.1:8000/v1",
        "VLLM_KEY",
    )
    parsed = parse_judge_spec("tagged:m@http://127.0.0.1:8000/v1#VLLM_KEY")
    assert (parsed.base_url, parsed.key_env) == ("http://127.0.0.1:8000/v1", "VLLM_KEY")
    with pytest.raises(Exception, match="environment variable name"):
        parse_judge_spec("logprob:m@http://127.0.0.1:8000/v1#not a name")
    with pytest.raises(Exception) as info:
        parse_judge_spec(f"logprob:m@ftp://u:{PASSWORD}@host/v1")
    assert PASSWORD not in str(info.value)
    assert strip_userinfo(f"http://u:{PASSWORD}@h:1/v1") == "http://h:1/v1"


def test_a_cache_key_does_not_depend_on_url_credentials(
    server: FakeChatServer, tmp_path: Path
) -> None:
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        plain = make_judge_from_spec(f"logprob:m@{server.base_url}", cache=cache)
        secret = make_judge_from_spec(f"logprob:m@{with_credentials(server.base_url)}", cache=cache)
        assert plain.key_for(REQUESTS[0]) == secret.key_for(REQUESTS[0])  # type: ignore[attr-defined]
        assert json.dumps(secret.inner.info()).find(PASSWORD) == -1  # type: ignore[attr-defined]


def test_cli_logging_redacts_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    import logging

    from emscope.secrets import RedactingFilter

    records: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    handler = Collect()
    handler.addFilter(RedactingFilter())
    log = logging.getLogger("emscope.test.redaction")
    log.addHandler(handler)
    try:
        log.warning("request to %s failed with key %s", "http://u:pw@h/v1", OPENAI_SECRET)
    finally:
        log.removeHandler(handler)
    assert records == ["request to http://[redacted]@h/v1 failed with key [redacted]"]
