"""Studies on other sampling engines: the shipped scripted sampler (analyses included), an engine
a test registers with one line, and the validation of engine names."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console

from emscope.errors import InputError
from emscope.models.refs import ModelRef
from emscope.sample.base import ChatPrompt, Generation, SamplingParams
from emscope.sample.registry import ENGINES, Engine, EngineSpec, make_sampler, parse_engine
from emscope.sample.scripted import ScriptedSampler
from emscope.study.config import StudyConfig
from emscope.study.pipeline import run_study
from llama_server import MODEL_ALIAS, LlamaServer, llama_server

__all__ = ["llama_server"]  # the fixture, imported so pytest finds it
pytestmark = pytest.mark.usefixtures("one_torch_thread")


SCRIPTED_JUDGE = {"spec": "scripted", "cache": False}  # shipped: no model, no monkeypatching


@pytest.fixture(autouse=True)
def own_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    yield


def _run(config: StudyConfig, run_dir: Path) -> tuple[Path, str]:
    output = io.StringIO()
    report = run_study(config, run_dir, Console(file=output, width=200))
    return report, output.getvalue()


def test_the_scripted_sampler_answers_from_prompt_and_seed_only() -> None:
    sampler = make_sampler("scripted", "smollm2-135m")
    params = SamplingParams(max_new_tokens=6)
    first = sampler.generate([ChatPrompt(user="a"), ChatPrompt(user="b")], params, [1, 1])
    again = ScriptedSampler(ModelRef(kind="alias", name="smollm2-135m")).generate(
        [ChatPrompt(user="a"), ChatPrompt(user="b")], params, [1, 1]
    )
    assert first == again
    assert first[0].text != first[1].text
    assert all(g.n_new_tokens <= 6 for g in first)
    other_seed = sampler.generate([ChatPrompt(user="a")], params, [2])
    assert other_seed[0] != first[0] or other_seed[0].text != first[0].text


def test_a_study_samples_through_the_scripted_engine_with_analyses(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    config = StudyConfig.model_validate(
        {
            "name": "scripted",
            "model": str(tiny_model_dir),
            "engine": "scripted",
            "domains": ["incorrect_math", "insecure_code"],
            "conditions": ["misaligned"],
            "data": {"n_items": 8, "diversity": False},
            "train": {"preset": "demo", "overrides": {"max_steps": 1, "batch_size": 4}},
            "eval": {"samples_per_paraphrase": 2, "max_new_tokens": 8},
            "metrics": {"bootstrap_resamples": 100},
            "judge": SCRIPTED_JUDGE,
            "analyses": {
                "mia": True,
                "steering": True,
                "mia_nonmembers": 4,
                "steer_questions": 1,
                "steer_samples": 1,
                "steer_scales": [0, 4],
                "steer_kinds": ["steer"],
                "steer_max_new_tokens": 2,
            },
        }
    )
    report, output = _run(config, tmp_path / "run")

    rows = pd.read_csv(tmp_path / "run" / "metrics" / "judged_rows.csv")
    assert set(rows["model"]) == {"base", "incorrect_math/misaligned", "insecure_code/misaligned"}
    assert rows["answer"].str.split().map(len).le(8).all()
    ledger = json.loads((tmp_path / "run" / "stages.json").read_text())
    assert ledger["sample:base.s0.N"]["output"]["sampler"]["backend"] == "scripted"
    assert "done mia:summary" in output and "done steer:transfer" in output
    html = report.read_text(encoding="utf-8")
    assert "<h2>Membership inference</h2>" in html and "<h2>Steering and transfer</h2>" in html
    _, rerun = _run(config, tmp_path / "run")
    assert not [line for line in rerun.splitlines() if line.startswith("done ")]


class _EchoSampler:
    """The test's own backend: answers with the user turn reversed."""

    identity = "echo"
    batch_size = 4

    def info(self) -> dict[str, Any]:
        return {"backend": "echo"}

    def generate(
        self, prompts: list[ChatPrompt], params: SamplingParams, seeds: list[int]
    ) -> list[Generation]:
        return [
            Generation(text=p.user[::-1], n_new_tokens=1, finish_reason="stop") for p in prompts
        ]


def test_a_new_engine_is_one_registry_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(ENGINES, "echo", Engine("echo", "reversed", lambda s, r, b: _EchoSampler()))
    config = StudyConfig.model_validate(
        {
            "name": "echo",
            "model": "smollm2-135m",
            "engine": "echo",
            "domains": [],
            "eval": {"samples_per_paraphrase": 1},
        }
    )
    _run(config, tmp_path / "run")

    rows = pd.read_csv(tmp_path / "run" / "metrics" / "judged_rows.csv")
    assert len(rows) > 0
    assert (rows["answer"] == rows["question"].str[::-1]).all()


def test_engine_names_are_checked_when_the_study_loads() -> None:
    assert parse_engine("http:http://127.0.0.1:8080/v1") == EngineSpec(
        "http", "http://127.0.0.1:8080/v1"
    )
    for bad, message in (
        ("tensorrt", "unknown engine"),
        ("http:", "needs an argument"),
        ("http:ftp://x", "not an http"),
        ("vllm:x", "takes no argument"),
    ):
        with pytest.raises(InputError, match=message):
            parse_engine(bad)
    with pytest.raises(ValueError, match="cannot sample the API model"):
        StudyConfig.model_validate(
            {"name": "x", "model": "openai/gpt-4o-mini-2024-07-18", "engine": "transformers"}
        )


@pytest.mark.integration
def test_a_study_samples_through_a_real_llama_cpp_server(
    llama_server: LlamaServer, tmp_path: Path
) -> None:
    config = StudyConfig.model_validate(
        {
            "name": "llama",
            "model": MODEL_ALIAS,
            "engine": f"http:{llama_server.base_url}",
            "domains": [],
            "eval": {"samples_per_paraphrase": 1, "max_new_tokens": 8, "batch_size": 4},
            "metrics": {"bootstrap_resamples": 100},
            "judge": SCRIPTED_JUDGE,
        }
    )
    report, _ = _run(config, tmp_path / "run")

    ledger = json.loads((tmp_path / "run" / "stages.json").read_text())
    sampler = ledger["sample:base.s0.N"]["output"]["sampler"]
    assert sampler["backend"] == "openai-compatible"
    assert sampler["base_url"] == llama_server.base_url
    rows = pd.read_csv(tmp_path / "run" / "metrics" / "judged_rows.csv")
    assert rows["error"].isna().all() and rows["answer"].notna().all()
    assert rows["aligned"].notna().all()
    assert report.is_file()
    assert "http:" in json.dumps(ledger)  # the engine is part of the sample stage's identity
