"""Talking to an OpenAI-compatible endpoint: where it is, how to retry, how many requests at once.

One policy serves every HTTP backend (the sampler, both API judges, the Batch API path): the
``openai`` client's own retries are switched off (``max_retries=0``) so that retrying is ours and
testable. Transient failures (connection errors, timeouts, 408/409/429/5xx) are retried with
jittered exponential backoff; a ``Retry-After`` (or ``retry-after-ms``) header is honoured as
the wait. The API key is read from an environment variable, never logged or stored, and sent
only to the server it belongs to (see :class:`ApiEndpoint`).

>>> endpoint = ApiEndpoint(model="smollm2", base_url="http://127.0.0.1:8080/v1")
>>> endpoint.identity
'openai-compatible:smollm2@127.0.0.1:8080'
"""

from __future__ import annotations

import asyncio
import base64
import email.utils
import os
import random
import re
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

from emscope.errors import EmscopeError, InputError
from emscope.secrets import (
    redact,
    register_key_env,
    register_secret,
    strip_userinfo,
    url_credentials,
)

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

OPENAI_HOST = "api.openai.com"
OPENAI_KEY_ENV = "OPENAI_API_KEY"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")
# Sent to a server that needs no key (llama.cpp, vLLM, SGLang): the client insists on one.
NO_KEY = "no-key"
LOCAL_DUMMY_KEY = NO_KEY  # the old name
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def split_key_env(url: str) -> tuple[str, str | None]:
    """Split ``URL#KEY_ENV`` into the URL and the name of the variable holding its key.

    A spec for a server other than OpenAI names its key variable this way; without one, no key
    is sent (never ``OPENAI_API_KEY``).

    >>> split_key_env("http://127.0.0.1:8000/v1#VLLM_KEY")
    ('http://127.0.0.1:8000/v1', 'VLLM_KEY')
    >>> split_key_env("http://127.0.0.1:8000/v1")
    ('http://127.0.0.1:8000/v1', None)
    """
    base, hash_mark, name = url.partition("#")
    if not hash_mark:
        return url, None
    name = name.strip()
    if not _ENV_NAME.match(name):
        raise InputError(
            f"{name!r} after '#' is not an environment variable name (letters, digits, _)",
            field="base_url",
            hint="write URL#KEY_ENV, e.g. http://127.0.0.1:8000/v1#VLLM_KEY",
        )
    return base.strip(), name


class ApiEndpoint(BaseModel):
    """An OpenAI-compatible server and model. ``base_url=None`` means OpenAI itself.

    The key is read from the environment variable ``api_key_env`` when a client is made. Left
    unset, it is ``OPENAI_API_KEY`` for OpenAI (no ``base_url``, or ``api.openai.com``) and *no
    key* for every other server, so OpenAI's key never reaches another host. ``base_url`` may
    end in ``#KEY_ENV`` (sets ``api_key_env``) and may carry ``user:password@``: those
    credentials are sent as HTTP basic auth to that server only, and never stored (the URL is
    kept without them; ``credentials`` is excluded from every dump).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    base_url: str | None = None
    api_key_env: str | None = None
    timeout_s: float = Field(default=120.0, gt=0)
    max_concurrency: int = Field(default=8, ge=1)
    credentials: SecretStr | None = Field(default=None, exclude=True, repr=False)

    @model_validator(mode="before")
    @classmethod
    def _take_secrets_out_of_the_url(cls, data: Any) -> Any:
        if not isinstance(data, dict) or not data.get("base_url"):
            return data
        data = dict(data)
        url, key_env = split_key_env(str(data["base_url"]))
        if key_env is not None:
            if data.get("api_key_env") not in (None, key_env):
                raise ValueError("the key variable is named twice (#KEY_ENV and api_key_env)")
            data["api_key_env"] = key_env
        userinfo = url_credentials(url)
        if userinfo is not None:
            user, password = userinfo
            register_secret(password)
            register_secret(user)
            data["credentials"] = f"{user}:{password}"
            url = strip_userinfo(url)
        data["base_url"] = url
        return data

    @model_validator(mode="after")
    def _one_kind_of_key(self) -> ApiEndpoint:
        if self.api_key_env is not None:
            if not _ENV_NAME.match(self.api_key_env):
                raise ValueError(f"api_key_env {self.api_key_env!r} is not a variable name")
            register_key_env(self.api_key_env)
            if self.credentials is not None:
                raise ValueError(
                    "give the key either as user:password in the URL or as #KEY_ENV, not both"
                )
        return self

    @property
    def host(self) -> str:
        """``host[:port]`` of the server (never credentials), for identities and logs."""
        if not self.base_url:
            return OPENAI_HOST
        return urlsplit(self.base_url).netloc.rpartition("@")[2]

    @property
    def is_openai(self) -> bool:
        return not self.base_url or urlsplit(self.base_url).hostname == OPENAI_HOST

    @property
    def is_local(self) -> bool:
        return urlsplit(self.base_url or "").hostname in LOCAL_HOSTS

    @property
    def identity(self) -> str:
        return f"openai-compatible:{self.model}@{self.host}"

    @property
    def key_env(self) -> str | None:
        """The variable the key is read from; None when no key is sent (another server)."""
        if self.api_key_env is not None:
            return self.api_key_env
        return OPENAI_KEY_ENV if self.is_openai and self.credentials is None else None

    def api_key(self) -> str:
        """The key to send: from :attr:`key_env`, or :data:`NO_KEY` when none belongs here."""
        env = self.key_env
        if env is None:
            return NO_KEY
        key = os.environ.get(env)
        if key:
            return key
        hint = (
            "export it, or for a server that needs no key leave #KEY_ENV out of the spec"
            if env != OPENAI_KEY_ENV
            else "export your OpenAI key"
        )
        raise EmscopeError(
            f"no API key for {self.host}: set the environment variable {env}", hint=hint
        )

    def auth_headers(self) -> dict[str, str]:
        """Basic auth from the URL's credentials (sent to this server only), else nothing."""
        if self.credentials is None:
            return {}
        token = base64.b64encode(self.credentials.get_secret_value().encode()).decode()
        return {"Authorization": f"Basic {token}"}

    def info(self) -> dict[str, Any]:
        """What a manifest records about the endpoint (never a key or URL credentials)."""
        return {
            "model": self.model,
            "base_url": self.base_url,
            "host": self.host,
            "api_key_env": self.key_env,
            "auth": "basic (from the URL, not stored)"
            if self.credentials is not None
            else ("bearer" if self.key_env else "none"),
            "timeout_s": self.timeout_s,
            "max_concurrency": self.max_concurrency,
        }

    def async_client(self) -> AsyncOpenAI:
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            api_key=self.api_key(),
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=0,
            default_headers=self.auth_headers() or None,
        )

    def sync_client(self) -> OpenAI:
        from openai import OpenAI

        return OpenAI(
            api_key=self.api_key(),
            base_url=self.base_url,
            timeout=self.timeout_s,
            max_retries=0,
            default_headers=self.auth_headers() or None,
        )


@dataclass(frozen=True)
class RetryPolicy:
    """Retry transient failures up to ``max_attempts`` tries in all.

    The wait before retry ``n`` (0-based) is uniform in ``[0, min(max_delay_s,
    base_delay_s * 2**n)]`` ("full jitter"), unless the server sent ``Retry-After``: then that
    many seconds, capped at ``max_retry_after_s``.
    """

    max_attempts: int = 6
    base_delay_s: float = 1.0
    max_delay_s: float = 60.0
    max_retry_after_s: float = 600.0

    def delay(self, retry: int, retry_after_s: float | None, rng: random.Random) -> float:
        if retry_after_s is not None:
            return min(max(retry_after_s, 0.0), self.max_retry_after_s)
        return rng.uniform(0.0, min(self.max_delay_s, self.base_delay_s * 2**retry))

    def as_dict(self) -> dict[str, float]:
        return {
            "max_attempts": self.max_attempts,
            "base_delay_s": self.base_delay_s,
            "max_delay_s": self.max_delay_s,
            "max_retry_after_s": self.max_retry_after_s,
        }


def is_retryable(exc: BaseException) -> bool:
    """Connection errors, timeouts and 408/409/429/5xx are worth another try; 4xx are not."""
    import openai

    if isinstance(exc, openai.APIConnectionError):  # timeouts included
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in RETRYABLE_STATUS or exc.status_code >= 500
    return False


def retry_after_seconds(exc: BaseException, *, now: float | None = None) -> float | None:
    """Seconds the server asked us to wait: ``retry-after-ms``, or ``Retry-After`` as seconds
    or an HTTP date; None when there is no usable header."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    millis = headers.get("retry-after-ms")
    if millis is not None:
        try:
            return float(millis) / 1000.0
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def describe_error(exc: BaseException) -> str:
    """A one-line description of a failed request, for stored failure rows and logs.

    Keys are redacted (:func:`emscope.secrets.redact`): a 401 message quotes part of the key.

    >>> describe_error(ValueError("Incorrect API key provided: sk-proj-abc**xyz."))
    'ValueError: Incorrect API key provided: sk-[redacted]'
    """
    status = getattr(exc, "status_code", None)
    prefix = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")
    return f"{prefix}: {redact(str(exc))}"


async def call_with_retries(
    call: Callable[[], Awaitable[T]],
    policy: RetryPolicy,
    *,
    sleep: Sleep = asyncio.sleep,
    rng: random.Random | None = None,
) -> T:
    """Await ``call()``; retry transient failures per ``policy``; re-raise the last failure."""
    rng = rng or random.Random()
    for retry in range(policy.max_attempts):
        try:
            return await call()
        except Exception as exc:
            if not is_retryable(exc) or retry == policy.max_attempts - 1:
                raise
            await sleep(policy.delay(retry, retry_after_seconds(exc), rng))
    raise AssertionError("unreachable: max_attempts >= 1")  # pragma: no cover


async def gather_bounded(
    calls: Sequence[Callable[[], Awaitable[T]]], limit: int
) -> list[T | Exception]:
    """Run ``calls`` with at most ``limit`` in flight; each result or its exception, in order."""
    semaphore = asyncio.Semaphore(limit)

    async def one(call: Callable[[], Awaitable[T]]) -> T | Exception:
        async with semaphore:
            try:
                return await call()
            except Exception as exc:  # returned, so one failure never cancels the others
                return exc

    return list(await asyncio.gather(*(one(call) for call in calls)))


def run_sync(coroutine: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine to completion from sync code, also when a loop is already running
    (a notebook): then it runs on a fresh loop in a helper thread."""
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coroutine)
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coroutine)
        except BaseException as exc:
            box["error"] = exc

    thread = threading.Thread(target=target)
    thread.start()
    thread.join()
    if "error" in box:
        raise box["error"]
    value: T = box["value"]
    return value
