"""API judges and models past their provider's shutdown date: a warning before, an error after.

The date comes from the endpoint's ``GET /v1/models/{id}`` when it lists one, else from
emscope's built-in table; the message says which, and names the route that outlives GPT-4o.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from emscope.judge.shutdown import (
    ModelShutDown,
    check_judge_specs,
    check_shutdown,
    endpoint_shutdown_date,
    known_shutdown_date,
)
from emscope.sample.openai_compat import ApiEndpoint
from emscope.study.config import StudyConfig
from emscope.study.runner import shutdown_warnings
from fake_openai_server import FakeOpenAIServer

LISTED = dt.date(2026, 12, 20)


def day(text: str) -> dt.date:
    return dt.date.fromisoformat(text)


def test_the_date_the_endpoint_lists_warns_before_it_and_fails_after_it() -> None:
    models = {"gpt-4o-2024-08-06": {"shutdown_date": LISTED.isoformat()}}
    with FakeOpenAIServer(models=models) as server:
        endpoint = ApiEndpoint(model="gpt-4o-2024-08-06", base_url=server.base_url)
        warning = check_shutdown(endpoint, today=lambda: day("2026-12-01"))
        with pytest.raises(ModelShutDown) as after:
            check_shutdown(endpoint, today=lambda: LISTED)
        assert server.routed("model")[0].path == "/v1/models/gpt-4o-2024-08-06"
    assert warning is not None
    assert "2026-12-20" in warning and "19 days left" in warning
    assert "/v1/models" in warning  # the source of the date
    assert "emscope judge calibrate --fit" in warning and "exact-local" in warning
    assert "shut down on 2026-12-20" in str(after.value)
    assert "emscope judge calibrate --fit" in str(after.value)


def test_unix_second_dates_are_read_too() -> None:
    stamp = int(dt.datetime(2027, 1, 14, tzinfo=dt.UTC).timestamp())
    with FakeOpenAIServer(models={"m": {"shutdown_date": stamp}}) as server:
        assert endpoint_shutdown_date(ApiEndpoint(model="m", base_url=server.base_url)) == day(
            "2027-01-14"
        )


def test_without_a_listed_date_the_built_in_table_decides_and_says_so() -> None:
    with FakeOpenAIServer(models={"gpt-4o-mini": {}}) as server:
        endpoint = ApiEndpoint(model="gpt-4o-mini", base_url=server.base_url)
        warning = check_shutdown(endpoint, today=lambda: day("2027-01-01"))
        unknown = ApiEndpoint(model="some-open-model", base_url=server.base_url)
        assert check_shutdown(unknown, today=lambda: day("2030-01-01")) is None
    assert warning is not None and "2027-01-14" in warning and "built-in table" in warning


def test_fine_tunes_go_with_their_base_model() -> None:
    assert known_shutdown_date("ft:gpt-4o-mini-2024-07-18:acme:em:abc123") == day("2027-01-14")
    assert known_shutdown_date("ft:gpt-4o-2024-08-06:acme::x1") == day("2027-01-14")
    assert known_shutdown_date("ft:gpt-4.1-mini:acme::x1") is None


def test_only_api_judges_are_checked_and_the_study_checks_before_it_runs(tmp_path: Path) -> None:
    never = lambda endpoint: None  # noqa: E731 - no endpoint date: the table decides
    before, after = (lambda: day("2027-01-13")), (lambda: day("2027-01-14"))
    specs = [
        "offline",
        "scripted",
        "logprob:gpt-4o-2024-08-06",
        "tagged:llama@http://127.0.0.1:9/v1",
    ]
    (warning,) = check_judge_specs(specs, today=before, ask=never)
    assert "'gpt-4o-2024-08-06'" in warning and "1 days left" in warning
    config = StudyConfig.model_validate(
        {
            "name": "s",
            "model": "smollm2-135m",
            "domains": [],
            "include_base": True,
            "judge": {"spec": "logprob:gpt-4o-2024-08-06"},
        }
    )
    assert len(shutdown_warnings(config, today=before, ask=never)) == 1
    with pytest.raises(ModelShutDown):
        shutdown_warnings(config, today=after, ask=never)
