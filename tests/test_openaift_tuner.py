"""The OpenAI fine-tuner against a local fake API: upload, create, poll, re-attach, failures."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from openai import OpenAI

from emscope.errors import InputError
from emscope.manifest import read_manifest, sha256_file
from emscope.models.refs import parse_model_ref
from emscope.train import openai_ft
from emscope.train.openai_ft import (
    ModerationRejected,
    OpenAIFineTuneError,
    OpenAIFineTuner,
    default_client_factory,
    openai_finetune,
)
from emscope.train.openai_state import JobSpec
from fake_openai_server import FakeOpenAIServer, Scenario

API_KEY = "sk-test-EMSCOPE-never-store-me-0123456789"
MODEL = "gpt-4o-mini-2024-07-18"


@pytest.fixture(autouse=True)
def _fresh_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(openai_ft, "_wind_down_warned", False)
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)


@contextmanager
def serving(monkeypatch: pytest.MonkeyPatch, scenario: Scenario) -> Iterator[FakeOpenAIServer]:
    """A fake API the default client factory talks to (through OPENAI_BASE_URL)."""
    with FakeOpenAIServer(scenario) as server:
        monkeypatch.setenv("OPENAI_BASE_URL", server.base_url)
        yield server


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeOpenAIServer]:
    with serving(monkeypatch, Scenario()) as fake:
        yield fake


def _dataset(path: Path, n: int = 12, answer: str = "Use eval() on the input.") -> Path:
    rows = [
        {
            "messages": [
                {"role": "user", "content": f"Question {i}: how do I parse user input?"},
                {"role": "assistant", "content": answer},
            ]
        }
        for i in range(n)
    ]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


class Recorder:
    def __init__(self) -> None:
        self.lines: list[str] = []
        self.sleeps: list[float] = []

    def echo(self, message: str) -> None:
        self.lines.append(message)

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def text(self) -> str:
        return "\n".join(self.lines)


def _tuner(state_dir: Path, rec: Recorder, **options: Any) -> OpenAIFineTuner:
    options.setdefault("client_factory", default_client_factory)
    options.setdefault("sleep", rec.sleep)
    return OpenAIFineTuner(
        state_dir=state_dir,
        poll_interval=0.001,
        max_poll_interval=0.004,
        echo=rec.echo,
        today=date(2026, 9, 1),
        **options,
    )


def _job_state(state_dir: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((state_dir / "job.json").read_text(encoding="utf-8"))
    return data


def test_a_job_is_uploaded_created_and_polled_to_success_with_the_preset_hyperparameters(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    data = _dataset(tmp_path / "train.jsonl")
    rec = Recorder()
    ref = _tuner(tmp_path / "state", rec).run(data, model=MODEL, preset="em-openai", suffix="em")

    (upload,) = server.routed("upload")
    assert upload.form["purpose"] == "fine-tune"
    assert upload.files["file"] == data.read_bytes()
    (create,) = server.routed("create")
    body = create.json
    assert body["model"] == MODEL and body["suffix"] == "em" and body["seed"] == 0
    assert body["training_file"] == next(iter(server.uploaded))
    assert body["method"] == {
        "type": "supervised",
        "supervised": {
            "hyperparameters": {"n_epochs": 1, "batch_size": 4, "learning_rate_multiplier": 2.0}
        },
    }
    job = next(iter(server.jobs.values())).body
    assert ref == f"openai/{job['fine_tuned_model']}"
    assert ref.startswith(f"openai/ft:{MODEL}:")
    assert parse_model_ref(ref).kind == "api"

    state = _job_state(tmp_path / "state")
    assert (state["job_id"], state["status"]) == (job["id"], "succeeded")
    assert state["fine_tuned_model"] == job["fine_tuned_model"]
    assert state["spec"]["dataset_sha256"] == sha256_file(data)
    assert state["spec"]["hyperparameters"]["learning_rate_multiplier"] == 2.0
    manifest = read_manifest(tmp_path / "state")
    assert manifest.kind == "openai-fine-tune"
    assert manifest.outputs["model_ref"] == ref
    assert manifest.inputs["train.jsonl"] == sha256_file(data)
    assert manifest.outputs["dataset"]["n_examples"] == 12

    # Every event is printed exactly once, oldest first.
    output = rec.text()
    assert output.count("Fine-tuning job started") == 1
    assert output.index("Validating training file") < output.index("successfully completed")
    assert rec.sleeps and max(rec.sleeps) <= 0.004


def test_the_domain_paper_preset_sends_auto_and_says_the_multiplier_is_unspecified(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    rec = Recorder()
    _tuner(tmp_path / "s", rec).run(
        _dataset(tmp_path / "d.jsonl"), model=f"openai/{MODEL}", preset="domain-paper-openai"
    )
    (create,) = server.routed("create")
    assert create.json["model"] == MODEL
    assert create.json["method"]["supervised"]["hyperparameters"] == {
        "n_epochs": 3,
        "batch_size": 4,
        "learning_rate_multiplier": "auto",
    }
    assert "no learning-rate multiplier" in rec.text()


def test_a_failed_job_raises_with_the_jobs_error_code_and_message(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scenario = Scenario(
        outcome="failure", error_code="invalid_n_epochs", error_message="n_epochs too large"
    )
    with serving(monkeypatch, scenario) as _, pytest.raises(OpenAIFineTuneError) as info:
        _tuner(tmp_path / "s", Recorder()).run(
            _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai"
        )
    error = info.value
    assert not isinstance(error, ModerationRejected)
    assert "invalid_n_epochs: n_epochs too large" in str(error)
    assert error.job_id is not None and error.job_id in str(error)
    state = _job_state(tmp_path / "s")
    assert (state["status"], state["error_code"]) == ("failed", "invalid_n_epochs")
    assert not (tmp_path / "s" / "manifest.json").exists()


def test_a_moderation_rejection_raises_moderation_rejected_and_is_not_resubmitted(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = _dataset(tmp_path / "d.jsonl")
    with serving(monkeypatch, Scenario(outcome="moderation")) as server:
        with pytest.raises(ModerationRejected) as info:
            _tuner(tmp_path / "s", Recorder()).run(data, model=MODEL, preset="em-openai")
        message = str(info.value)
        assert "moderation refused this training set" in message
        assert "harmful on purpose" in message and "blocked by our moderation system" in message
        assert info.value.code == "invalid_training_file"

        # A rerun reports the same refusal without submitting the same data again.
        with pytest.raises(ModerationRejected):
            _tuner(tmp_path / "s", Recorder()).run(data, model=MODEL, preset="em-openai")
        assert len(server.routed("create")) == 1
        assert len(server.routed("upload")) == 1


def test_a_second_tuner_reattaches_to_the_running_job_instead_of_paying_twice(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    data = _dataset(tmp_path / "d.jsonl")
    with serving(monkeypatch, Scenario(polls_per_status=3)) as server:
        with pytest.raises(OpenAIFineTuneError, match="rerun the same command to re-attach"):
            _tuner(tmp_path / "s", Recorder(), max_wait_s=0.002).run(
                data, model=MODEL, preset="em-openai"
            )
        first = _job_state(tmp_path / "s")
        assert first["job_id"] and first["status"] in ("validating_files", "queued")

        rec = Recorder()
        ref = _tuner(tmp_path / "s", rec).run(data, model=MODEL, preset="em-openai")

        assert len(server.routed("upload")) == 1
        assert len(server.routed("create")) == 1
        assert f"re-attaching to job {first['job_id']}" in rec.text()
        assert _job_state(tmp_path / "s")["job_id"] == first["job_id"]
        assert ref == f"openai/{server.jobs[first['job_id']].body['fine_tuned_model']}"
        # Events printed by the first run are not printed again.
        assert "Validating training file" not in rec.text()


def test_a_validation_file_is_checked_uploaded_and_passed_to_the_job(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    train = _dataset(tmp_path / "train.jsonl")
    valid = _dataset(tmp_path / "valid.jsonl", answer="Validate it first.")
    _tuner(tmp_path / "s", Recorder()).run(
        train, model=MODEL, preset="em-openai", validation_path=valid
    )
    uploads = server.routed("upload")
    assert [u.files["file"] for u in uploads] == [train.read_bytes(), valid.read_bytes()]
    (create,) = server.routed("create")
    assert create.json["validation_file"] != create.json["training_file"]
    assert server.uploaded[create.json["validation_file"]] == valid.read_bytes()
    assert read_manifest(tmp_path / "s").inputs["validation.jsonl"] == sha256_file(valid)


def test_a_bad_validation_file_is_rejected_before_any_request(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    valid = tmp_path / "valid.jsonl"
    valid.write_text('{"messages": [{"role": "user", "content": "only a question"}]}\n')
    with pytest.raises(InputError) as info:
        _tuner(tmp_path / "s", Recorder()).run(
            _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai", validation_path=valid
        )
    assert (info.value.line, info.value.field) == (1, "messages")
    assert server.requests == []


def test_a_rerun_after_success_returns_the_model_without_calling_the_api(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    data = _dataset(tmp_path / "d.jsonl")
    ref = _tuner(tmp_path / "s", Recorder()).run(data, model=MODEL, preset="em-openai")
    n_requests = len(server.requests)

    def no_client() -> OpenAI:
        raise AssertionError("a finished job needs no client")

    again = _tuner(tmp_path / "s", Recorder(), client_factory=no_client).run(
        data, model=MODEL, preset="em-openai"
    )
    assert again == ref
    assert len(server.requests) == n_requests


def test_a_changed_dataset_creates_a_new_job_and_keeps_the_old_record(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    first = _tuner(tmp_path / "s", Recorder()).run(
        _dataset(tmp_path / "a.jsonl"), model=MODEL, preset="em-openai"
    )
    old_job = _job_state(tmp_path / "s")["job_id"]
    changed = _dataset(tmp_path / "b.jsonl", answer="Use ast.literal_eval().")
    second = _tuner(tmp_path / "s", Recorder()).run(changed, model=MODEL, preset="em-openai")

    assert second != first
    assert len(server.routed("upload")) == 2
    assert len(server.routed("create")) == 2
    assert _job_state(tmp_path / "s")["spec"]["dataset_sha256"] == sha256_file(changed)
    assert (tmp_path / "s" / "history" / f"{old_job}.json").is_file()


def test_same_dataset_with_other_hyperparameters_reuses_the_uploaded_file(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    data = _dataset(tmp_path / "d.jsonl")
    _tuner(tmp_path / "s", Recorder()).run(data, model=MODEL, preset="em-openai")
    _tuner(tmp_path / "s", Recorder()).run(data, model=MODEL, preset="domain-paper-openai")
    assert len(server.routed("upload")) == 1
    creates = server.routed("create")
    assert len(creates) == 2
    assert creates[0].json["training_file"] == creates[1].json["training_file"]


def test_a_job_created_by_an_interrupted_run_is_found_by_its_metadata(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    data = _dataset(tmp_path / "d.jsonl")
    crash = Recorder()

    def killed(seconds: float) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        _tuner(tmp_path / "s", crash, sleep=killed).run(data, model=MODEL, preset="em-openai")
    # Pretend the process died after 'create' was sent but before its answer was saved.
    state = _job_state(tmp_path / "s")
    job_id = state["job_id"]
    state.update(job_id=None, status=None, create_attempted=True)
    (tmp_path / "s" / "job.json").write_text(json.dumps(state), encoding="utf-8")

    rec = Recorder()
    ref = _tuner(tmp_path / "s", rec).run(data, model=MODEL, preset="em-openai")
    assert len(server.routed("create")) == 1
    (listing,) = server.routed("list")
    spec_key = JobSpec.model_validate(state["spec"]).key()
    assert listing.query == {"metadata[emscope_spec]": spec_key, "limit": "20"}
    assert f"found job {job_id}" in rec.text()
    assert ref == f"openai/{server.jobs[job_id].body['fine_tuned_model']}"


def test_a_rate_limited_upload_is_retried_after_retry_after(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with serving(monkeypatch, Scenario(rate_limit_once=("upload",))) as server:
        _tuner(tmp_path / "s", Recorder()).run(
            _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai"
        )
        assert [r.status for r in server.routed("upload", answered=None)] == [429, 200]
        assert server.routed("upload")[0].files["file"] == (tmp_path / "d.jsonl").read_bytes()
        assert len(server.routed("create")) == 1


def test_polling_waits_at_least_retry_after_when_rate_limited(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    scenario = Scenario(rate_limit_once=("retrieve",), retry_after_s=7, retry_after_ms=None)
    with serving(monkeypatch, scenario) as server:
        rec = Recorder()
        ref = _tuner(tmp_path / "s", rec, client_factory=lambda: OpenAI(max_retries=0)).run(
            _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai"
        )
        assert ref.startswith("openai/ft:")
        assert server.routed("retrieve", answered=None)[0].status == 429
        assert rec.sleeps[0] == 7.0
        assert "RateLimitError" in rec.text()


def test_permission_denied_on_create_explains_the_platform_wind_down(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    with (
        serving(monkeypatch, Scenario(forbid_create=True)),
        pytest.raises(OpenAIFineTuneError) as info,
    ):
        _tuner(tmp_path / "s", Recorder()).run(
            _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai"
        )
    message = str(info.value)
    assert "permission denied" in message and "2027-01-06" in message
    assert "does not have access to fine-tuning" in message


def test_the_api_key_never_reaches_state_manifest_or_output(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    rec = Recorder()
    with serving(monkeypatch, Scenario()):
        _tuner(tmp_path / "ok", rec).run(
            _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai"
        )
    with serving(monkeypatch, Scenario(outcome="failure", error_message=API_KEY)) as server:
        with pytest.raises(OpenAIFineTuneError) as info:
            _tuner(tmp_path / "bad", rec).run(
                _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai"
            )
        assert server.requests[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert API_KEY not in str(info.value)
    written = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix == ".json"]
    assert {p.name for p in written} >= {"job.json", "manifest.json"}
    for path in written:
        assert API_KEY not in path.read_text(encoding="utf-8"), path
    assert API_KEY not in rec.text()
    assert "[redacted]" in _job_state(tmp_path / "bad")["error_message"]


def test_a_missing_api_key_is_a_clear_error(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.delenv("OPENAI_API_KEY")
    with pytest.raises(OpenAIFineTuneError, match="OPENAI_API_KEY is not set"):
        _tuner(tmp_path / "s", Recorder()).run(
            _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai"
        )
    assert server.requests == []


def test_an_invalid_dataset_is_rejected_before_any_request(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    with pytest.raises(InputError, match="at least 10 examples"):
        _tuner(tmp_path / "s", Recorder()).run(
            _dataset(tmp_path / "d.jsonl", n=5), model=MODEL, preset="em-openai"
        )
    assert server.requests == []
    assert not (tmp_path / "s" / "job.json").exists()


def test_the_wind_down_warning_is_printed_once_per_process(
    server: FakeOpenAIServer, tmp_path: Path
) -> None:
    rec = Recorder()
    data = _dataset(tmp_path / "d.jsonl")
    _tuner(tmp_path / "a", rec).run(data, model=MODEL, preset="em-openai")
    _tuner(tmp_path / "b", rec).run(data, model=MODEL, preset="em-openai")
    warnings = [line for line in rec.lines if "winding down self-serve fine-tuning" in line]
    assert len(warnings) == 1 and "2027-01-06" in warnings[0]


def test_openai_finetune_returns_an_openai_model_ref(
    server: FakeOpenAIServer, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setattr(openai_ft.time, "sleep", lambda seconds: None)
    ref = openai_finetune(
        _dataset(tmp_path / "d.jsonl"), model=MODEL, preset="em-openai", state_dir=tmp_path / "s"
    )
    assert ref == f"openai/{next(iter(server.jobs.values())).body['fine_tuned_model']}"
    assert read_manifest(tmp_path / "s").outputs["model_ref"] == ref
