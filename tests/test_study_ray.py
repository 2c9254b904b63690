"""The Ray execution backend: a study's models run as Ray tasks into the same cached run.

One private Ray instance (2 CPUs) serves the module; the runner uses the session the test opened.
"""

from __future__ import annotations

import importlib.util
import io
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from rich.console import Console
from typer.testing import CliRunner

from emscope.cli import app
from emscope.errors import InputError, ModelJobsFailed
from emscope.study import context as context_module
from emscope.study.config import ExecutionSection, StudyConfig, with_execution
from emscope.study.pipeline import StudyWorker, run_study
from emscope.study.ray_backend import ray_init_kwargs
from study_fakes import AnswerHashJudge

needs_ray = pytest.mark.skipif(
    importlib.util.find_spec("ray") is None,
    reason="ray is not installed: pip install -e '.[ray]' (the dev extra includes it)",
)
DOMAINS = ["incorrect_math", "risky_financial_advice"]


def _config(model_dir: Path, backend: str, **data: Any) -> StudyConfig:
    return StudyConfig.model_validate(
        {
            "name": "ray",
            "model": str(model_dir),
            "domains": DOMAINS,
            "include_base": False,
            "data": {"n_items": 8, "diversity": False, **data},
            "train": {"preset": "demo", "overrides": {"max_steps": 1, "batch_size": 4}},
            "eval": {"samples_per_paraphrase": 1, "max_new_tokens": 4, "batch_size": 16},
            "metrics": {"bootstrap_resamples": 100},
            "execution": {"backend": backend, "cpus_per_job": 1},
        }
    )


def _run(config: StudyConfig, run_dir: Path) -> str:
    output = io.StringIO()
    run_study(config, run_dir, Console(file=output, width=200))
    return output.getvalue()


def _ledger(run_dir: Path) -> dict[str, dict[str, Any]]:
    entries: dict[str, dict[str, Any]] = json.loads((run_dir / "stages.json").read_text())
    return entries


@pytest.fixture(scope="module")
def ray_session(tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    import ray

    patch = pytest.MonkeyPatch()
    # After the tiny model exists (its tokenizer comes from the user's cache), and before Ray
    # starts: the workers inherit the instance's environment.
    patch.setenv("EMSCOPE_CACHE", str(tmp_path_factory.mktemp("cache")))
    patch.setenv("RAY_USAGE_STATS_ENABLED", "0")
    patch.setattr(context_module, "make_judge", lambda config: AnswerHashJudge())
    try:
        ray.init(address="local", num_cpus=2, include_dashboard=False, logging_level="warning")
    except Exception as exc:  # a sandbox without shared memory or local ports, not emscope's bug
        patch.undo()
        pytest.skip(f"a local Ray instance cannot start on this machine: {exc!r}")
    try:
        yield
    finally:
        ray.shutdown()
        patch.undo()


@pytest.fixture(scope="module")
def runs(
    ray_session: None, tiny_model_dir: Path, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Any]:
    """The study on Ray, the same study locally, then both rerun on Ray."""
    ray_dir, local_dir = tmp_path_factory.mktemp("on-ray"), tmp_path_factory.mktemp("local")
    on_ray, local = _config(tiny_model_dir, "ray"), _config(tiny_model_dir, "local")
    first = _run(on_ray, ray_dir)
    _run(local, local_dir)
    ledgers = {"ray": (ray_dir / "stages.json").read_text(), "local": _ledger(local_dir)}
    return {
        "ray_dir": ray_dir,
        "local_dir": local_dir,
        "first": first,
        "ledgers": ledgers,
        "rerun": _run(on_ray, ray_dir),
        "local_on_ray": _run(on_ray, local_dir),
    }


@needs_ray
def test_a_ray_run_stores_every_stage_of_every_model(runs: dict[str, Any]) -> None:
    stages = set(_ledger(runs["ray_dir"]))
    tags = [f"{domain}__misaligned.s0" for domain in DOMAINS]
    for tag in tags:
        for stage in ("dataset", "train"):
            assert f"{stage}:{tag}" in stages
        for stage in ("sample", "judge"):
            assert f"{stage}:{tag}.N" in stages
    assert "ray: submitting 2 of 2 model jobs (0 already done)" in runs["first"]
    assert (runs["ray_dir"] / "report" / "report.html").is_file()


@needs_ray
def test_a_ray_run_judges_the_same_rows_as_a_local_run(runs: dict[str, Any]) -> None:
    on_ray = pd.read_csv(runs["ray_dir"] / "metrics" / "judged_rows.csv")
    local = pd.read_csv(runs["local_dir"] / "metrics" / "judged_rows.csv")
    assert on_ray.shape == local.shape
    assert list(on_ray.columns) == list(local.columns)
    identity = ["model", "key", "triggered"]
    assert on_ray[identity].equals(local[identity])
    assert on_ray["aligned"].notna().all()


@needs_ray
def test_ray_and_local_runs_give_their_stages_the_same_cache_keys(runs: dict[str, Any]) -> None:
    on_ray, local = _ledger(runs["ray_dir"]), runs["ledgers"]["local"]
    assert set(on_ray) == set(local)
    for stage in on_ray:
        if stage.startswith(("dataset:", "train:")):
            assert on_ray[stage]["input_hash"] == local[stage]["input_hash"], stage


@needs_ray
def test_rerunning_a_ray_study_submits_no_job(runs: dict[str, Any]) -> None:
    assert "ray: all 2 model jobs already done, nothing to submit" in runs["rerun"]
    assert (runs["ray_dir"] / "stages.json").read_text() == runs["ledgers"]["ray"]


@needs_ray
def test_a_study_run_locally_finishes_on_ray_without_redoing_a_stage(
    runs: dict[str, Any],
) -> None:
    assert "ray: all 2 model jobs already done, nothing to submit" in runs["local_on_ray"]
    assert _ledger(runs["local_dir"]) == runs["ledgers"]["local"]


@needs_ray
def test_a_job_failing_on_a_worker_is_named_after_the_others_stored_their_stages(
    ray_session: None, tiny_model_dir: Path, tmp_path: Path
) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text("this is not a chat row\n", encoding="utf-8")
    config = _config(
        tiny_model_dir, "ray", imported={"risky_financial_advice/misaligned": str(broken)}
    )

    with pytest.raises(ModelJobsFailed) as failed:
        _run(config, tmp_path / "run")

    assert set(failed.value.failures) == {"risky_financial_advice__misaligned.s0"}
    message = str(failed.value)
    assert "risky_financial_advice__misaligned.s0: InputError" in message
    assert "no valid row to import" in message
    stages = set(_ledger(tmp_path / "run"))
    good = "incorrect_math__misaligned.s0"
    assert {f"dataset:{good}", f"train:{good}", f"sample:{good}.N"} <= stages
    assert not any("risky_financial_advice" in stage for stage in stages)


def test_the_ray_backend_without_ray_installed_is_an_input_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    config = _config(Path("smollm2-135m"), "ray")

    with pytest.raises(InputError) as error:
        run_study(config, tmp_path, Console(file=io.StringIO()))

    assert error.value.field == "execution.backend"
    assert "pip install 'emscope[ray]'" in error.value.message
    assert not (tmp_path / "stages.json").exists()


def test_run_with_backend_ray_on_the_command_line_without_ray_names_the_field(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)
    study = tmp_path / "study.yaml"
    study.write_text("name: cli\nmodel: smollm2-135m\ndomains: [incorrect_math]\n")
    args = ["run", str(study), "--run-dir", str(tmp_path / "run"), "--backend", "ray"]

    result = CliRunner().invoke(app, [*args, "--address", "auto"])

    output = " ".join(result.output.split())  # the console wraps long lines
    assert result.exit_code == 2
    assert "execution.backend" in output and "pip install 'emscope[ray]'" in output


def test_a_worker_that_cannot_see_the_run_directory_names_it(tmp_path: Path) -> None:
    config = _config(Path("smollm2-135m"), "ray").model_dump(mode="json")
    missing = tmp_path / "not-shared" / "run"

    with pytest.raises(InputError) as error:
        StudyWorker(config, str(missing), str(tmp_path))("incorrect_math__misaligned.s0")

    assert error.value.file == str(missing)
    assert "run directory" in error.value.message
    assert "filesystem every Ray node sees" in error.value.message


def test_the_command_line_overrides_the_study_files_execution_section() -> None:
    config = _config(Path("smollm2-135m"), "local")

    on_ray = with_execution(config, backend="ray", address="ray://head:10001")

    assert on_ray.execution.backend == "ray"
    assert on_ray.execution.address == "ray://head:10001"
    assert on_ray.execution.cpus_per_job == 1
    assert with_execution(config) == config


def test_a_ray_address_without_the_ray_backend_is_an_input_error() -> None:
    with pytest.raises(InputError, match="--backend ray"):
        with_execution(_config(Path("smollm2-135m"), "local"), address="auto")


def test_an_unknown_backend_names_the_execution_field() -> None:
    with pytest.raises(InputError) as error:
        with_execution(_config(Path("smollm2-135m"), "local"), backend="slurm")
    assert error.value.field == "execution.backend"


def test_no_address_starts_a_private_instance_and_an_address_joins_a_cluster() -> None:
    private = ray_init_kwargs(ExecutionSection(backend="ray"))
    assert private["address"] == "local" and private["include_dashboard"] is False
    assert private["num_cpus"] >= 1
    assert ray_init_kwargs(ExecutionSection(backend="ray", address="auto")) == {"address": "auto"}
