"""Talking to an OpenAI-compatible endpoint: where it is, how to retry, how many requests at once.

One policy serves every HTTP backend (the sampler, both API judges, the Batch API path): the
``openai`` client's own retries are switched off (``max_retries=0``) so that retrying is ours and
testable. Transient failures (connection errors, timeouts, 408/409/429/5xx) are retried with
jittered exponential backoff; a ``Retry-After`` (or ``retry-after-ms``) header is honoured as
the wait. The API key is read from an environment variable, never logged or stored.

>>> endpoint = ApiEndpoint(model="smollm2", base_url="http://127.0.0.1:8080/v1")
>>> endpoint.identity
'openai-compatible:smollm2@127.0.0.1:8080'
"""

from __future__ import annotations

import asyncio
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

from pydantic import BaseModel, ConfigDict, Field

from emscope.errors import EmscopeError

if TYPE_CHECKING:
    from openai import AsyncOpenAI, OpenAI

T = TypeVar("T")
Sleep = Callable[[float], Awaitable[None]]

OPENAI_HOST = "api.openai.com"
LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1", "0.0.0.0")
# Local servers (llama.cpp, vLLM, SGLang) accept any key; the client insists on one.
LOCAL_DUMMY_KEY = "local-server-no-key"
_KEY_LIKE = re.compile(r"sk-\S+")
RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})


class ApiEndpoint(BaseModel):
    """An OpenAI-compatible server and model. ``base_url=None`` means OpenAI itself.

    ``api_key_env`` names the environment variable holding the key; for a local server
    (127.0.0.1, localhost) a dummy key is used when that variable is unset.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    base_url: str | None = None
    api_key_env: str = "OPENAI_API_KEY"
    timeout_s: float = Field(default=120.0, gt=0)
    max_concurrency: int = Field(default=8, ge=1)

    @property
    def host(self) -> str:
        """``host[:port]`` of the server, for identities and logs."""
        return urlsplit(self.base_url).netloc if self.base_url else OPENAI_HOST

    @property
    def is_openai(self) -> bool:
        return self.host == OPENAI_HOST

    @property
    def is_local(self) -> bool:
        return urlsplit(self.base_url or "").hostname in LOCAL_HOSTS

    @property
    def identity(self) -> str:
        return f"openai-compatible:{self.model}@{self.host}"

    def api_key(self) -> str:
        key = os.environ.get(self.api_key_env)
        if key:
            return key
        if self.is_local:
            return LOCAL_DUMMY_KEY
        raise EmscopeError(
            f"no API key for {self.host}: set the environment variable {self.api_key_env}"
        )

    def info(self) -> dict[str, Any]:
        """What a manifest records about the endpoint (never the key)."""
        return {
            "model": self.model,
            "base_url": self.base_url,
            "host": self.host,
            "api_key_env": self.api_key_env,
            "timeout_s": self.timeout_s,
            "max_concurrency": self.max_concurrency,
        }

    def async_client(self) -> AsyncOpenAI:
        from openai import AsyncOpenAI

        return AsyncOpenAI(
            api_key=self.api_key(), base_url=self.base_url, timeout=self.timeout_s, max_retries=0
        )

    def sync_client(self) -> OpenAI:
        from openai import OpenAI

        return OpenAI(
            api_key=self.api_key(), base_url=self.base_url, timeout=self.timeout_s, max_retries=0
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

    Anything that looks like an API key is redacted: OpenAI's 401 message quotes part of it.

    >>> describe_error(ValueError("Incorrect API key provided: sk-proj-abc**xyz."))
    'ValueError: Incorrect API key provided: sk-[redacted]'
    """
    status = getattr(exc, "status_code", None)
    prefix = f"{type(exc).__name__}" + (f" (HTTP {status})" if status else "")
    return f"{prefix}: {_KEY_LIKE.sub('sk-[redacted]', str(exc))}"


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
