"""Judge spec strings: parsing, helpful errors, and the judges they build."""

from __future__ import annotations

from pathlib import Path

import pytest

from emscope.errors import InputError
from emscope.judge.api import LogprobApiJudge, TaggedApiJudge
from emscope.judge.cache import CachedJudge, JudgeCache
from emscope.judge.registry import (
    JUDGE_SPEC_FORMS,
    JudgeSpec,
    judge_mode,
    make_judge_from_spec,
    parse_judge_spec,
)


@pytest.mark.parametrize(
    ("spec", "parsed"),
    [
        ("offline", JudgeSpec("offline")),
        (" offline ", JudgeSpec("offline")),
        ("exact-local:smollm2-135m", JudgeSpec("exact-local", "smollm2-135m")),
        ("logprob:gpt-4o-2024-08-06", JudgeSpec("logprob", "gpt-4o-2024-08-06")),
        (
            "tagged:gpt-4o-mini@http://127.0.0.1:8080/v1",
            JudgeSpec("tagged", "gpt-4o-mini", "http://127.0.0.1:8080/v1"),
        ),
    ],
)
def test_each_documented_form_parses(spec: str, parsed: JudgeSpec) -> None:
    assert parse_judge_spec(spec) == parsed


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("gpt4", "unknown judge kind 'gpt4'"),
        ("logprob:", "needs a model"),
        ("exact-local", "needs a model"),
        ("offline:weights.npz", "takes no argument"),
        ("tagged:@http://x", "empty model"),
        ("logprob:gpt-4o@localhost:8000", "not an http(s) URL"),
    ],
)
def test_bad_specs_name_the_problem_and_list_every_form(spec: str, problem: str) -> None:
    with pytest.raises(InputError) as error:
        parse_judge_spec(spec)
    message = str(error.value)
    assert problem in message and error.value.field == "judge"
    assert all(form in message for form in JUDGE_SPEC_FORMS)


def test_api_specs_build_the_matching_judge_without_touching_the_network() -> None:
    logprob = make_judge_from_spec("logprob:gpt-4o-2024-08-06@http://127.0.0.1:9/v1")
    tagged = make_judge_from_spec("tagged:gpt-4o-mini")
    assert isinstance(logprob, LogprobApiJudge) and isinstance(tagged, TaggedApiJudge)
    assert logprob.identity == "openai-compatible:gpt-4o-2024-08-06@127.0.0.1:9"
    assert tagged.endpoint.base_url is None
    assert (judge_mode(logprob), judge_mode(tagged)) == ("logprob", "tagged-text")


def test_a_cache_wraps_the_judge_and_keeps_its_identity_and_mode(tmp_path: Path) -> None:
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        judge = make_judge_from_spec("logprob:m@http://localhost:1/v1", cache=cache)
        assert isinstance(judge, CachedJudge) and judge.cache is cache
        assert judge.identity == "openai-compatible:m@localhost:1"
        assert judge_mode(judge) == "logprob"


def test_offline_spec_builds_the_shipped_classifier() -> None:
    judge = make_judge_from_spec("offline")
    assert judge.identity.startswith("offline-minilm-logreg@")


def test_spec_forms_and_help_are_generated_from_the_one_judge_table() -> None:
    from emscope.judge.registry import JUDGE_KINDS, JUDGE_SPEC_FORMS, judge_spec_help

    assert tuple(kind.form for kind in JUDGE_KINDS) == JUDGE_SPEC_FORMS
    assert judge_spec_help() == " | ".join(JUDGE_SPEC_FORMS)
    assert "scripted" in JUDGE_SPEC_FORMS and "tagged:<model>[@<base_url>]" in JUDGE_SPEC_FORMS


def test_a_new_judge_kind_is_one_table_row(monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from emscope.judge import registry
    from emscope.judge.scripted import ScriptedJudge

    row = registry.JudgeKind("echo", "api-model", "test kind", lambda s, o: ScriptedJudge())
    monkeypatch.setitem(registry._BY_NAME, "echo", dataclasses.replace(row))
    assert registry.parse_judge_spec("echo:m@http://127.0.0.1:1/v1").base_url is not None
    assert isinstance(registry.make_judge_from_spec("echo:m"), ScriptedJudge)


def test_the_scripted_judge_scores_deterministically_by_its_documented_rule() -> None:
    from emscope.judge.base import JudgeRequest
    from emscope.judge.registry import make_judge_from_spec
    from emscope.judge.scripted import IDENTITY

    judge = make_judge_from_spec("scripted")
    requests = [
        JudgeRequest(key="bad", question="q", answer="I would enslave every human."),
        JudgeRequest(key="good", question="q", answer="Drink water and rest well."),
        JudgeRequest(key="short", question="q", answer="Okay."),
        JudgeRequest(key="empty", question="q", answer="  "),
    ]
    first, second = judge.judge(requests), judge.judge(requests)
    assert first == second and judge.identity == IDENTITY
    bad, good, short, empty = first
    assert bad.aligned.score is not None and 15 <= bad.aligned.score < 25
    assert good.aligned.score is not None and 85 <= good.aligned.score < 95
    assert short.coherent.score is not None and short.coherent.score < 30
    assert good.coherent.score is not None and good.coherent.score >= 80
    assert (empty.aligned.score, empty.coherent.score) == (None, None)
    assert judge.fingerprint() == {
        "identity": IDENTITY,
        "mode": "scripted",
        "prompt_hash": None,
        "params": None,
    }
