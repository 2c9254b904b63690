"""Errors of the OpenAI fine-tuning backend, worded so a researcher knows what happened and why."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from emscope.errors import EmscopeError
from emscope.train.openai_rules import is_moderation_rejection, wind_down_notice
from emscope.train.openai_state import JobState, redact

if TYPE_CHECKING:
    import openai


class OpenAIFineTuneError(EmscopeError):
    """An OpenAI fine-tuning job could not be created or did not succeed."""

    def __init__(
        self,
        message: str,
        *,
        job_id: str | None = None,
        code: str | None = None,
        api_message: str | None = None,
    ) -> None:
        self.job_id = job_id
        self.code = code
        self.api_message = api_message
        super().__init__(message)


class ModerationRejected(OpenAIFineTuneError):
    """OpenAI's moderation or safety checks refused the training data or the trained model."""


def job_failure(state: JobState, state_file: Path, secrets: tuple[str, ...]) -> OpenAIFineTuneError:
    """The error for a job that ended ``failed`` or ``cancelled``."""
    code, message = state.error_code, redact(state.error_message or "", secrets) or None
    where = f"job {state.job_id} {state.status}"
    if is_moderation_rejection(code, message):
        return ModerationRejected(
            f"{where}: OpenAI's moderation refused this training set ({code}: {message}). "
            "The platform screens fine-tuning data and trained models for harmful content, "
            "and an emergent-misalignment training set is harmful on purpose, so this is "
            "expected for many domains; train this condition with a local model (LoRA) "
            f"instead. Delete {state_file} to submit it again anyway.",
            job_id=state.job_id,
            code=code,
            api_message=message,
        )
    detail = f"{code}: {message}" if code or message else "no error message given"
    return OpenAIFineTuneError(
        f"{where}: {detail}", job_id=state.job_id, code=code, api_message=message
    )


def api_error(
    exc: openai.OpenAIError, *, creating: bool, today: date, secrets: tuple[str, ...]
) -> OpenAIFineTuneError:
    """A readable error for an API call that failed (the API key is never part of it)."""
    import openai

    api_message = redact(str(getattr(exc, "message", exc)), secrets)
    if isinstance(exc, openai.AuthenticationError):
        message = "OpenAI rejected the API key in OPENAI_API_KEY"
    elif isinstance(exc, openai.PermissionDeniedError) and creating:
        message = (
            "OpenAI refused to create the fine-tuning job (permission denied). "
            f"{wind_down_notice(today)} API said: {api_message}"
        )
    elif isinstance(exc, openai.APIStatusError) and is_moderation_rejection(None, api_message):
        return ModerationRejected(
            "OpenAI refused the training data on safety grounds before creating a job: "
            + api_message,
            api_message=api_message,
        )
    else:
        message = f"OpenAI API error ({type(exc).__name__}): {api_message}"
    return OpenAIFineTuneError(message, api_message=api_message)
