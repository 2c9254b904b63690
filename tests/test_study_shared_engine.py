"""A study family sampling every model through one engine (``shared_engine``).

One per-model run of a tiny LoRA study (the tiny random Llama, two domains, base included) is
the reference. Each test copies its trained run (datasets, adapters, their ledger entries) and
samples it again through a shared engine: the transformers multi-adapter engine, that engine
killed mid-sampling and resumed, and vLLM's multi-LoRA engine over a fake ``vllm.LLM`` that
computes with the same transformers model, injected through the engine registry.
"""

from __future__ import annotations

import io
import json
import shutil
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from rich.console import Console

from emscope.sample import many, vllm_backend
from emscope.sample.adapters import AdapterRegistry
from emscope.sample.base import ChatPrompt, SamplingParams
from emscope.sample.live import AdapterCheckError
from emscope.sample.multi_adapter import MultiAdapterSampler
from emscope.sample.registry import ENGINES
from emscope.study.config import StudyConfig
from emscope.study.dry_run import plan_run
from emscope.study.pipeline import run_study
from study_fakes import QUESTIONS, Killed

pytestmark = [
    pytest.mark.integration,
    pytest.mark.usefixtures("one_torch_thread"),
    pytest.mark.filterwarnings("ignore:.*judge_prompts is missing"),
]

FILES = ("base.s0.N", "incorrect_math__misaligned.s0.N", "insecure_code__misaligned.s0.N")


def study(model_dir: Path, questions: Path, **family: Any) -> StudyConfig:
    return StudyConfig.model_validate(
        {
            "name": "shared",
            "model": str(model_dir),
            "domains": ["incorrect_math", "insecure_code"],
            "conditions": ["misaligned"],
            "data": {"n_items": 8, "diversity": False},
            # A large learning rate: two steps move the tiny model's greedy answers.
            "train": {
                "preset": "demo",
                "overrides": {"max_steps": 2, "batch_size": 4, "lr": 0.05},
            },
            # Greedy: the tiny random model's next-token distribution is nearly flat, so at
            # temperature 1 a last-bit logit difference (merged vs stacked adapter) moves a
            # per-row draw across an interval boundary every few dozen tokens.
            "eval": {
                "questions": str(questions),
                "max_new_tokens": 8,
                "batch_size": 2,
                "temperature": 0,
            },
            "metrics": {"bootstrap_resamples": 100},
            "judge": {"spec": "scripted", "cache": False},
            **family,
        }
    )


def run(config: StudyConfig, run_dir: Path) -> str:
    out = io.StringIO()
    run_study(config, run_dir, Console(file=out, width=200), progress_bars=False)
    return out.getvalue()


def rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def answers(run_dir: Path, name: str) -> dict[str, tuple[str, int]]:
    return {r["key"]: (r["answer"], r["seed"]) for r in rows(run_dir / "samples" / f"{name}.jsonl")}


def ledger(run_dir: Path) -> dict[str, Any]:
    return dict(json.loads((run_dir / "stages.json").read_text()))


@pytest.fixture(scope="module")
def per_model_run(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The reference: the study sampled one model at a time (merged adapters)."""
    root = tmp_path_factory.mktemp("per-model")
    (root / "questions.yaml").write_text(QUESTIONS)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EMSCOPE_CACHE", str(root / "cache"))
        run(study(tiny_model_dir, root / "questions.yaml"), root / "run")
    return root


@pytest.fixture
def trained(per_model_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the reference run that holds its datasets and adapters and nothing sampled."""
    monkeypatch.setenv("EMSCOPE_CACHE", str(tmp_path / "cache"))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for part in ("datasets", "models"):
        shutil.copytree(per_model_run / "run" / part, run_dir / part)
    kept = {
        k: v
        for k, v in ledger(per_model_run / "run").items()
        if k.split(":")[0] in ("dataset", "train")
    }
    (run_dir / "stages.json").write_text(json.dumps(kept))
    shutil.copy(per_model_run / "questions.yaml", tmp_path / "questions.yaml")
    return run_dir


def test_one_transformers_engine_stores_each_model_the_rows_it_samples_alone(
    tiny_model_dir: Path, per_model_run: Path, trained: Path
) -> None:
    config = study(tiny_model_dir, trained.parent / "questions.yaml", shared_engine=True)
    output = run(config, trained)

    assert "done train:" not in output  # the adapters are the reference run's
    reference = per_model_run / "run"
    for name in FILES:
        assert answers(trained, name) == answers(reference, name), name
    entries = ledger(trained)
    for name in FILES:
        sampler = entries[f"sample:{name}"]["output"]["sampler"]
        assert sampler["backend"] == "transformers-multi-adapter"
        assert sampler["shared_engine"] == "transformers" and sampler["models_in_engine"] == 3
        # the per-model stage's key: switching a study to a shared engine keeps its samples
        assert (
            entries[f"sample:{name}"]["input_hash"]
            == ledger(reference)[f"sample:{name}"]["input_hash"]
        )
    for name in FILES[1:]:
        live = entries[f"sample:{name}"]["output"]["sampler"]["liveness"]
        assert live["n_differing_from_base"] >= 1, live
        assert live["agreement_with_reference"] == 1.0  # stacked LoRA == peft's layers, fp32
    assert entries["sample:base.s0.N"]["output"]["sampler"]["liveness"] is None
    provenance = json.loads((trained / "metrics" / "provenance.json").read_text())
    assert set(provenance["adapter_checks"]) == set(FILES[1:])
    assert [f["shared_engine"] for f in provenance["families"].values()] == [True]
    html = (trained / "report" / "report.html").read_text(encoding="utf-8")
    assert "adapter_checks" in html and "agreement_with_reference" in html
    rerun = run(config, trained)
    assert not [line for line in rerun.splitlines() if line.startswith("done ")]


def test_a_shared_engine_killed_mid_sampling_resumes_without_lost_or_duplicated_rows(
    tiny_model_dir: Path, per_model_run: Path, trained: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = study(tiny_model_dir, trained.parent / "questions.yaml", shared_engine=True)
    real = many._run_shared_batch
    calls = {"n": 0}

    def killed_on_the_fourth_batch(*args: Any, **kwargs: Any) -> Any:
        calls["n"] += 1
        if calls["n"] == 4:
            raise Killed
        return real(*args, **kwargs)

    monkeypatch.setattr(many, "_run_shared_batch", killed_on_the_fourth_batch)
    with pytest.raises(Killed):
        run(config, trained)
    monkeypatch.setattr(many, "_run_shared_batch", real)
    before = ledger(trained)
    assert "sample:base.s0.N" in before  # finished first (2 batches of 2), recorded at once
    assert "sample:insecure_code__misaligned.s0.N" not in before
    stored = {name: rows(trained / "samples" / f"{name}.jsonl") for name in FILES[:2]}
    assert len(stored[FILES[1]]) == 2  # one batch of the second model was stored

    output = run(config, trained)
    assert "skip sample:base.s0.N (done)" in output
    for name in FILES:
        resumed = rows(trained / "samples" / f"{name}.jsonl")
        assert max(Counter(r["key"] for r in resumed).values()) == 1, "a row was stored twice"
        assert answers(trained, name) == answers(per_model_run / "run", name), name
    for row in stored[FILES[1]]:
        assert row in rows(trained / "samples" / f"{FILES[1]}.jsonl")


class TransformersBackedLLM:
    """The slice of ``vllm.LLM`` that ``VllmMultiEngine`` uses, computing with transformers: the
    token prompts are decoded back to the rendered chat text and sampled per row with each
    request's seed and LoRA. ``drop_adapters`` imitates a vLLM bug: every adapter inactive."""

    def __init__(self, registry: AdapterRegistry, *, drop_adapters: bool = False) -> None:
        self.model = _TextPrompted(registry, dtype="float32", batch_size=4)
        self.drop_adapters = drop_adapters
        self.requests = 0

    def get_tokenizer(self) -> Any:
        return self.model.tokenizer

    def generate(
        self, prompts: list[Any], sampling_params: Any, *, use_tqdm: bool, lora_request: Any
    ) -> list[Any]:
        self.requests += len(prompts)
        tok = self.model.tokenizer
        texts = [tok.decode(p["prompt_token_ids"], skip_special_tokens=False) for p in prompts]
        params = sampling_params[0]
        ours = SamplingParams(
            temperature=params["temperature"],
            top_p=params["top_p"],
            max_new_tokens=params["max_tokens"],
        )
        models = [None if lo is None or self.drop_adapters else lo.lora_name for lo in lora_request]
        out = self.model.generate_mixed(
            [ChatPrompt(user=t) for t in texts], ours, [s["seed"] for s in sampling_params], models
        )
        return [
            SimpleNamespace(
                prompt_token_ids=p["prompt_token_ids"],
                outputs=[
                    SimpleNamespace(
                        text=g.text, token_ids=[0] * g.n_new_tokens, finish_reason=g.finish_reason
                    )
                ],
            )
            for p, g in zip(prompts, out, strict=True)
        ]


class _TextPrompted(MultiAdapterSampler):
    def render(self, prompt: ChatPrompt) -> str:
        return prompt.user  # already the rendered chat


@pytest.fixture
def fake_vllm(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[TransformersBackedLLM]]:
    """``engine: vllm`` builds ``VllmMultiEngine`` over a :class:`TransformersBackedLLM`."""
    built: list[TransformersBackedLLM] = []
    monkeypatch.setattr(
        vllm_backend, "require_vllm", lambda: SimpleNamespace(SamplingParams=lambda **kw: kw)
    )
    monkeypatch.setattr(
        vllm_backend,
        "lora_request_class",
        lambda: lambda name, index, path: SimpleNamespace(lora_name=name, lora_int_id=index),
    )

    def build(registry: AdapterRegistry, batch_size: int) -> vllm_backend.VllmMultiEngine:
        drop = bool(getattr(build, "drop", False))
        built.append(TransformersBackedLLM(registry, drop_adapters=drop))
        return vllm_backend.VllmMultiEngine(registry, batch_size=batch_size, engine=built[-1])

    monkeypatch.setitem(ENGINES, "vllm", replace(ENGINES["vllm"], shared=build))
    yield built


def test_a_vllm_family_samples_every_model_through_one_engine_after_the_adapter_check(
    tiny_model_dir: Path, per_model_run: Path, trained: Path, fake_vllm: list[Any]
) -> None:
    config = study(tiny_model_dir, trained.parent / "questions.yaml", engine="vllm")
    assert config.families()[0].shared_engine is None  # vllm shares one engine by default
    run(config, trained)

    (llm,) = fake_vllm  # one engine for every model
    # every answer (3 models x 4) + the check: 2 adapters x (with, without) x 4 prompts
    assert llm.requests == 3 * 4 + 2 * 2 * 4
    for name in FILES:
        assert answers(trained, name) == answers(per_model_run / "run", name), name
        out = ledger(trained)[f"sample:{name}"]["output"]
        assert out["sampler"]["backend"] == "vllm-multi-lora"
        assert out["sampler"]["engine_kwargs"]["max_loras"] == 2
    live = ledger(trained)[f"sample:{FILES[1]}"]["output"]["sampler"]["liveness"]
    # The reference ran in other batches (other left padding): on the tiny random model's
    # nearly flat logits that alone moves a few greedy tokens, so agreement is high, not 1.
    assert live["n_differing_from_base"] >= 1
    assert live["agreement_with_reference"] >= 0.75
    assert live["agreement_with_reference"] > live["base_agreement_with_reference"]


def test_a_vllm_engine_that_drops_the_adapters_stops_the_study_with_the_numbers(
    tiny_model_dir: Path, trained: Path, fake_vllm: list[Any]
) -> None:
    build = ENGINES["vllm"].shared
    build.drop = True  # type: ignore[union-attr]
    config = study(tiny_model_dir, trained.parent / "questions.yaml", engine="vllm")
    with pytest.raises(
        AdapterCheckError,
        match=r"adapter not live: greedy answers differ from the base model's on 0 of 4",
    ):
        run(config, trained)
    assert not (trained / "samples" / f"{FILES[1]}.jsonl").exists() or not rows(
        trained / "samples" / f"{FILES[1]}.jsonl"
    )


def test_dry_run_names_the_shared_engine(tiny_model_dir: Path, trained: Path) -> None:
    config = study(tiny_model_dir, trained.parent / "questions.yaml", engine="vllm")
    plan = plan_run(config, trained)
    assert {line[3] for line in plan.lines} == {"vllm (one engine, every model)"}
    assert all("train done" in line[4] for line in plan.lines[1:])
    per_model = study(tiny_model_dir, trained.parent / "questions.yaml", shared_engine=False)
    assert {line[3] for line in plan_run(per_model, trained).lines} == {"transformers"}


def test_shared_engine_and_adapter_checks_are_checked_when_the_study_loads(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    questions = tmp_path / "q.yaml"
    questions.write_text(QUESTIONS)
    with pytest.raises(ValueError, match="samples one model at a time; shared_engine needs"):
        study(tiny_model_dir, questions, engine="scripted", shared_engine=True)
    with pytest.raises(ValueError, match=r"eval\.check_adapters checks the adapters of a shared"):
        StudyConfig.model_validate(
            {"name": "x", "model": str(tiny_model_dir), "eval": {"check_adapters": True}}
        )
    assert not study(tiny_model_dir, questions).families()[0].shared_engine
