"""Fine-tune an OpenAI model on a chat JSONL file: validate, upload, create, poll, record.

The job's progress is kept in ``state_dir/job.json`` after every paid step, so rerunning the same
command (same dataset, model and hyperparameters) re-attaches to the job instead of uploading and
training twice. The API key is read by the ``openai`` client from ``OPENAI_API_KEY`` and is never
written anywhere. Run::

    ref = openai_finetune("data/insecure/train.jsonl", model="gpt-4o-mini-2024-07-18",
                          preset="em-openai", state_dir=Path("runs/openai-insecure"))
    # ref == "openai/ft:gpt-4o-mini-2024-07-18:org::abc123", ready for sampling and judging
"""

from __future__ import annotations

import os
import random
import sys
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Any

from emscope.errors import InputError
from emscope.manifest import sha256_file, write_manifest
from emscope.train.openai_errors import (
    ModerationRejected,
    OpenAIFineTuneError,
    api_error,
    job_failure,
)
from emscope.train.openai_format import (
    MIN_EXAMPLES,
    FormatReport,
    TokenCounter,
    check_openai_file,
)
from emscope.train.openai_presets import OpenAIPreset, get_openai_preset
from emscope.train.openai_rules import Backoff, is_moderation_rejection, wind_down_notice
from emscope.train.openai_state import (
    STATE_FILE,
    JobSpec,
    JobState,
    archive_state,
    job_manifest,
    load_state,
    redact,
    save_state,
)

if TYPE_CHECKING:
    import openai
    from openai import OpenAI
    from openai.types.fine_tuning import FineTuningJob

__all__ = [
    "ModerationRejected",
    "OpenAIFineTuneError",
    "OpenAIFineTuner",
    "default_client_factory",
    "openai_finetune",
    "warn_wind_down_once",
]

SPEC_METADATA_KEY = "emscope_spec"
MAX_TRANSIENT_ERRORS = 8
EVENTS_PAGE = 100
Echo = Callable[[str], None]
ClientFactory = Callable[[], "OpenAI"]

_wind_down_warned = False


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def warn_wind_down_once(echo: Echo, today: date | None = None) -> bool:
    """Print the platform wind-down notice the first time in this process; True if printed."""
    global _wind_down_warned
    if _wind_down_warned:
        return False
    _wind_down_warned = True
    echo("warning: " + wind_down_notice(today or date.today()))
    return True


def default_client_factory() -> OpenAI:
    """An ``openai.OpenAI`` client configured from the environment (OPENAI_API_KEY, ...)."""
    if not os.environ.get("OPENAI_API_KEY"):
        raise OpenAIFineTuneError(
            "OPENAI_API_KEY is not set: export it in the environment (emscope never reads API "
            "keys from files or arguments)"
        )
    from openai import OpenAI

    return OpenAI()


def _api_model_name(model: str) -> str:
    name = model.strip().removeprefix("openai/")
    if not name or "/" in name:
        raise InputError(
            f"not an OpenAI model name: {model!r} (e.g. gpt-4o-mini-2024-07-18)", field="model"
        )
    return name


class OpenAIFineTuner:
    """Runs one OpenAI fine-tuning job per state directory, resumably.

    ``client_factory`` builds the ``openai.OpenAI`` client (tests point it at a local fake);
    ``poll_interval`` is the first wait between status checks, doubling (with ``jitter``) up to
    ``max_poll_interval`` while nothing changes; ``max_wait_s`` bounds the total waiting (None:
    wait until the job ends -- a rerun re-attaches either way).
    """

    def __init__(
        self,
        client_factory: ClientFactory,
        state_dir: str | Path,
        *,
        poll_interval: float = 10.0,
        max_poll_interval: float = 300.0,
        jitter: float = 0.1,
        max_wait_s: float | None = None,
        echo: Echo = _stderr,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        today: date | None = None,
    ) -> None:
        self.client_factory = client_factory
        self.state_dir = Path(state_dir)
        self.backoff = Backoff(poll_interval, cap=max_poll_interval, jitter=jitter, rng=rng)
        self.max_wait_s = max_wait_s
        self._sleep = sleep
        self.today = today
        self._echo = echo
        self._client: OpenAI | None = None

    # -- public ---------------------------------------------------------------------------------

    def run(
        self,
        data_path: str | Path,
        *,
        model: str,
        preset: str | OpenAIPreset,
        validation_path: str | Path | None = None,
        suffix: str | None = None,
        seed: int | None = 0,
        count_tokens: TokenCounter | None = None,
    ) -> str:
        """Validate, upload, create (or re-attach), wait, and return ``openai/<fine_tuned_model>``.

        Raises :class:`ModerationRejected` when OpenAI refuses the data on safety grounds and
        :class:`OpenAIFineTuneError` for any other failed, cancelled or refused job.
        """
        warn_wind_down_once(self.echo, self.today)
        chosen = get_openai_preset(preset) if isinstance(preset, str) else preset
        model_name = _api_model_name(model)
        report = self._check(data_path, model_name, count_tokens)
        if chosen.note:
            self.echo(f"preset {chosen.name}: {chosen.note}")
        spec = JobSpec(
            model=model_name,
            dataset_sha256=sha256_file(data_path),
            validation_sha256=self._validation_sha(validation_path, model_name, count_tokens),
            hyperparameters=chosen.hyperparameters,
            suffix=suffix,
            seed=seed,
        )
        state = self._resume_or_start(spec, chosen.name)
        if state.status == "succeeded" and state.fine_tuned_model:
            self.echo(f"job {state.job_id} already succeeded: {state.fine_tuned_model}")
            return self._finish(state, report)
        self._upload_files(state, Path(data_path), validation_path)
        self._create_job(state)
        self._poll(state)
        return self._finish(state, report)

    def echo(self, message: str) -> None:
        self._echo(redact(message, self._secrets()))

    # -- steps ----------------------------------------------------------------------------------

    def _check(
        self,
        path: str | Path,
        model: str,
        count_tokens: TokenCounter | None,
        min_examples: int = MIN_EXAMPLES,
    ) -> FormatReport:
        report = check_openai_file(
            path, model=model, count_tokens=count_tokens, min_examples=min_examples
        )
        self.echo(
            f"{path}: {report.n_examples} examples, ~{report.total_tokens} tokens "
            f"({report.token_method} estimate), longest ~{report.max_tokens} of "
            f"{report.context_limit} allowed"
        )
        for warning in report.warnings():
            self.echo("warning: " + warning)
        return report

    def _validation_sha(
        self, path: str | Path | None, model: str, count_tokens: TokenCounter | None
    ) -> str | None:
        if path is None:
            return None
        self._check(
            path, model, count_tokens, min_examples=1
        )  # the 10-example floor is for training
        return sha256_file(path)

    def _resume_or_start(self, spec: JobSpec, preset_name: str) -> JobState:
        old = load_state(self.state_dir)
        if old is not None and old.spec == spec:
            if old.status not in ("failed", "cancelled"):
                if old.job_id:
                    self.echo(f"re-attaching to job {old.job_id} (status {old.status})")
                return old
            if is_moderation_rejection(old.error_code, old.error_message):
                raise self._failure(old)
            self.echo(
                f"previous job {old.job_id} {old.status} ({old.error_message or 'no message'}); "
                "starting a new job with the files already uploaded"
            )
        state = JobState(spec=spec, preset=preset_name)
        if old is not None:
            if old.spec.dataset_sha256 == spec.dataset_sha256:
                state.training_file_id = old.training_file_id
            if old.spec.validation_sha256 == spec.validation_sha256:
                state.validation_file_id = old.validation_file_id
            moved = archive_state(self.state_dir, old)
            if old.job_id and not old.is_terminal:
                self.echo(
                    f"warning: job {old.job_id} ({old.status}) was for a different dataset or "
                    f"settings; it keeps running at OpenAI, its record moved to {moved}"
                )
        self._save(state)
        return state

    def _upload_files(self, state: JobState, data: Path, validation: str | Path | None) -> None:
        if state.training_file_id is None:
            state.training_file_id = self._upload(data)
            self._save(state)
        if validation is not None and state.validation_file_id is None:
            state.validation_file_id = self._upload(Path(validation))
            self._save(state)

    def _upload(self, path: Path) -> str:
        self.echo(f"uploading {path}")
        with open(path, "rb") as handle:
            uploaded = self._call(
                lambda: self.client.files.create(file=handle, purpose="fine-tune")
            )
        self.echo(f"uploaded {path} as {uploaded.id}")
        return str(uploaded.id)

    def _create_job(self, state: JobState) -> None:
        if state.job_id is not None:
            return
        if state.create_attempted and self._adopt_lost_job(state):
            return
        state.create_attempted = True
        self._save(state)
        spec = state.spec
        assert state.training_file_id is not None
        kwargs: dict[str, Any] = {
            "model": spec.model,
            "training_file": state.training_file_id,
            "method": {
                "type": "supervised",
                "supervised": {"hyperparameters": spec.hyperparameters.api_dict()},
            },
            "metadata": {SPEC_METADATA_KEY: spec.key()},
        }
        optional = {
            "validation_file": state.validation_file_id,
            "suffix": spec.suffix,
            "seed": spec.seed,
        }
        kwargs.update({k: v for k, v in optional.items() if v is not None})
        job = self._call(lambda: self.client.fine_tuning.jobs.create(**kwargs), creating=True)
        self.echo(f"created job {job.id} ({job.status})")
        self._update(state, job)

    def _adopt_lost_job(self, state: JobState) -> bool:
        """After a crash between 'create' and saving its id, find the job by its metadata."""
        key = state.spec.key()
        jobs = self._call(
            lambda: self.client.fine_tuning.jobs.list(metadata={SPEC_METADATA_KEY: key}, limit=20)
        )
        for job in jobs.data:
            metadata = job.metadata or {}
            if (
                metadata.get(SPEC_METADATA_KEY) == key
                and job.training_file == state.training_file_id
            ):
                self.echo(f"found job {job.id} created by an interrupted run; re-attaching")
                self._update(state, job)
                return True
        return False

    def _poll(self, state: JobState) -> None:
        import openai

        assert state.job_id is not None
        job_id = state.job_id
        self.backoff.reset()
        waited, transient = 0.0, 0
        while not state.is_terminal:
            if self.max_wait_s is not None and waited >= self.max_wait_s:
                raise OpenAIFineTuneError(
                    f"job {job_id} still {state.status} after waiting {waited:.0f}s; rerun the "
                    "same command to re-attach",
                    job_id=job_id,
                )
            delay = self.backoff.next()
            try:
                job = self.client.fine_tuning.jobs.retrieve(job_id)
                progressed = self._print_events(state) | (job.status != state.status)
            except openai.APIError as exc:
                transient += 1
                delay = max(delay, self._transient_delay(exc, transient))
                self.echo(f"polling {job_id}: {type(exc).__name__}, retrying in {delay:.1f}s")
            else:
                transient = 0
                if progressed:
                    self.backoff.reset()
                self._update(state, job)
            if not state.is_terminal:
                (self._sleep or time.sleep)(delay)
                waited += delay
        try:
            self._print_events(state)
        except openai.APIError as exc:
            self.echo(f"could not fetch the last events of {job_id}: {type(exc).__name__}")
        if state.status != "succeeded":
            raise self._failure(state)

    def _print_events(self, state: JobState) -> bool:
        """Print events newer than the last one printed; True when there were any."""
        assert state.job_id is not None
        page = self.client.fine_tuning.jobs.list_events(state.job_id, limit=EVENTS_PAGE)
        fresh = []
        for event in page.data:  # newest first
            if event.id == state.last_event_id:
                break
            fresh.append(event)
        if len(fresh) == EVENTS_PAGE and state.last_event_id is not None:
            self.echo(f"{state.job_id}: (older events not shown)")
        for event in reversed(fresh):
            self.echo(f"{state.job_id} [{event.level}] {event.message}")
        if fresh:
            state.last_event_id = fresh[0].id
        return bool(fresh)

    def _finish(self, state: JobState, report: FormatReport) -> str:
        assert state.fine_tuned_model is not None
        ref = f"openai/{state.fine_tuned_model}"
        manifest = job_manifest(state, ref, report.summary())
        write_manifest(self.state_dir, manifest)
        self.echo(f"fine-tuned model ready: {ref}")
        return ref

    # -- helpers --------------------------------------------------------------------------------

    @property
    def client(self) -> OpenAI:
        if self._client is None:
            self._client = self.client_factory()
        return self._client

    def _secrets(self) -> tuple[str, ...]:
        return (os.environ.get("OPENAI_API_KEY", ""),)

    def _save(self, state: JobState) -> None:
        save_state(self.state_dir, state, self._secrets())

    def _update(self, state: JobState, job: FineTuningJob) -> None:
        if job.status != state.status:
            self.echo(f"job {job.id}: {job.status}")
        state.job_id = job.id
        state.status = job.status
        state.fine_tuned_model = job.fine_tuned_model
        state.trained_tokens = job.trained_tokens
        if job.hyperparameters is not None:
            state.reported_hyperparameters = job.hyperparameters.model_dump(exclude_none=True)
        code = getattr(job.error, "code", None)
        if code or getattr(job.error, "message", None):
            state.error_code = code
            state.error_message = getattr(job.error, "message", None)
        self._save(state)

    def _failure(self, state: JobState) -> OpenAIFineTuneError:
        return job_failure(state, self.state_dir / STATE_FILE, self._secrets())

    def _transient_delay(self, exc: openai.APIError, count: int) -> float:
        """Seconds to wait after a retryable error while polling; re-raise anything else."""
        import openai

        retryable = (openai.RateLimitError, openai.APIConnectionError, openai.InternalServerError)
        if not isinstance(exc, retryable) or count > MAX_TRANSIENT_ERRORS:
            raise self._api_error(exc) from exc
        if isinstance(exc, openai.APIStatusError):
            headers = exc.response.headers
            for name, scale in (("retry-after-ms", 1e-3), ("retry-after", 1.0)):
                try:
                    return float(headers.get(name, "")) * scale
                except ValueError:
                    continue
        return 0.0

    def _call(self, request: Callable[[], Any], *, creating: bool = False) -> Any:
        import openai

        try:
            return request()
        except openai.OpenAIError as exc:
            raise self._api_error(exc, creating=creating) from exc

    def _api_error(self, exc: openai.OpenAIError, *, creating: bool = False) -> Exception:
        today = self.today or date.today()
        return api_error(exc, creating=creating, today=today, secrets=self._secrets())


def openai_finetune(
    data_path: str | Path,
    *,
    model: str,
    preset: str,
    state_dir: str | Path,
    suffix: str | None = None,
    validation_path: str | Path | None = None,
    seed: int | None = 0,
) -> str:
    """Fine-tune ``model`` on ``data_path`` with an OpenAI preset; return ``openai/<ft model>``.

    Re-running with the same arguments re-attaches to the recorded job in ``state_dir``.
    """
    tuner = OpenAIFineTuner(default_client_factory, state_dir)
    return tuner.run(
        data_path,
        model=model,
        preset=preset,
        validation_path=validation_path,
        suffix=suffix,
        seed=seed,
    )
