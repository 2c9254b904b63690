"""Changing the judge prompts changes every cache key that depends on them, and nothing else.

The SQLite score cache keys on each request's prompt-set hash; the study's judge stage keys on
the run's prompt sets, so ``judge: {prompts: FILE}`` judges again.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
import yaml
from rich.console import Console

from emscope.errors import InputError
from emscope.judge.base import JudgeRecord, JudgeRequest, MetricScore, prompt_set_hash
from emscope.judge.cache import CachedJudge, JudgeCache
from emscope.sample.question_prompts import forced_judge_prompts
from emscope.sample.records import SampleRecord
from emscope.store import JsonlStore
from emscope.study.config import StudyConfig
from emscope.study.plan import ModelJob
from emscope.study.runner import StudyRunner

SHAPES = Path(__file__).parent / "data" / "question_shapes"
P1 = {"aligned": "A1 {question} {answer}", "coherent": "C1 {question} {answer}"}
P2 = {"aligned": "A1 {question} {answer} ", "coherent": "C1 {question} {answer}"}  # one space


class PromptEchoJudge:
    """Records the prompts it was asked to use; scores nothing in particular."""

    def __init__(self) -> None:
        self.seen: list[JudgeRequest] = []

    @property
    def identity(self) -> str:
        return "prompt-echo"

    def fingerprint(self) -> dict[str, Any]:
        return {"identity": "prompt-echo", "mode": "echo", "prompt_hash": "default", "params": None}

    def judge(self, requests: list[JudgeRequest]) -> list[JudgeRecord]:
        self.seen.extend(requests)
        return [
            JudgeRecord(
                key=r.key,
                judge="prompt-echo",
                mode="echo",
                prompt_hash=prompt_set_hash(r.prompts) if r.prompts else "default",
                prompt_origin=r.prompt_origin,
                aligned=MetricScore(score=80.0),
                coherent=MetricScore(score=80.0),
            )
            for r in requests
        ]


def test_the_score_cache_misses_when_one_character_of_a_prompt_changes(tmp_path: Path) -> None:
    def request(prompts: dict[str, str] | None, origin: str | None) -> JudgeRequest:
        return JudgeRequest(
            key="k", question="q", answer="a", prompts=prompts, prompt_origin=origin
        )

    inner = PromptEchoJudge()
    with JudgeCache(tmp_path / "c.sqlite") as cache:
        judge = CachedJudge(inner, cache)
        judge.judge([request(P1, "one.yaml")])
        judge.judge([request(P1, "renamed.yaml")])  # same text: a hit
        judge.judge([request(P2, "one.yaml")])  # one space more: a miss
        judge.judge([request(None, None)])  # the judge's defaults: a miss
        (again,) = judge.judge([request(P1, "renamed.yaml")])
    assert len(inner.seen) == 3
    assert again.prompt_origin == "renamed.yaml"  # the origin is the request's own
    assert again.prompt_hash == prompt_set_hash(P1)


def test_a_forced_prompt_file_is_a_mapping_or_a_question_files_first_entry(tmp_path: Path) -> None:
    mapping = tmp_path / "prompts.yaml"
    mapping.write_text(yaml.safe_dump(P1), encoding="utf-8")
    assert forced_judge_prompts(mapping) == (P1, str(mapping))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prompts, _origin = forced_judge_prompts(SHAPES / "all_domains_shape.yaml")
    assert prompts["aligned"].startswith("TEST ALIGNMENT PROMPT (all-domains shape, stray key)")
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"aligned": "no slots", "coherent": P1["coherent"]}))
    with pytest.raises(InputError, match="placeholder"):
        forced_judge_prompts(bad)


def _study(tmp_path: Path, **judge: Any) -> StudyConfig:
    return StudyConfig.model_validate(
        {
            "name": "keys",
            "model": "smollm2-135m",
            "domains": [],
            "include_base": True,
            "judge": {"spec": "scripted", "cache": False, **judge},
            "eval": {"questions": str(SHAPES / "first_plot_betley_shape.yaml")},
        }
    )


def _samples(path: Path) -> dict[str, Any]:
    store: JsonlStore[SampleRecord] = JsonlStore(path, SampleRecord)
    store.append(
        SampleRecord(
            key=f"k{i}",
            model="base",
            question_id=qid,
            paraphrase_index=0,
            sample_index=0,
            question="Hello?",
            answer="A calm answer.",
            seed=0,
        )
        for i, qid in enumerate(["make_a_wish", "bored_today_json"])
    )
    return {"path": str(path), "input_hash": "samples-hash"}


def _judge_once(config: StudyConfig, run_dir: Path, samples: dict[str, Any]) -> PromptEchoJudge:
    runner = StudyRunner(config, run_dir, Console(quiet=True), progress_bars=False)
    judge = PromptEchoJudge()
    runner._judge = judge
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        runner.judge(ModelJob(None, None, 0), samples, "N")
    return judge


def test_the_study_judges_again_when_judge_prompts_changes(tmp_path: Path) -> None:
    samples = _samples(tmp_path / "samples.jsonl")
    run_dir = tmp_path / "run"
    first = _judge_once(_study(tmp_path), run_dir, samples)
    assert len(first.seen) == 2
    assert {r.prompts["aligned"][:38] for r in first.seen if r.prompts} == {
        "TEST ALIGNMENT PROMPT (Betley shape). "
    }
    assert _judge_once(_study(tmp_path), run_dir, samples).seen == []  # done: skipped

    forced = tmp_path / "forced.yaml"
    forced.write_text(yaml.safe_dump(P1), encoding="utf-8")
    again = _judge_once(_study(tmp_path, prompts=str(forced)), run_dir, samples)
    assert len(again.seen) == 2
    assert all(r.prompts == P1 and r.prompt_origin == str(forced) for r in again.seen)
    stored = list(JsonlStore(run_dir / "judgements" / "base.s0.N.jsonl", JudgeRecord))
    assert {r.prompt_origin for r in stored} == {str(forced)}
