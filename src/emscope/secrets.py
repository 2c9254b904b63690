"""Keeping credentials out of everything emscope writes, prints or logs.

Two kinds of secret reach emscope: API keys in environment variables, and credentials written
into a URL (``http://user:PASS@host/v1``). Neither is ever stored: URLs are recorded with their
userinfo removed (:func:`strip_userinfo`), and every error or log line goes through
:func:`redact`, which replaces

- the value of every environment variable that holds a key: ``OPENAI_API_KEY``, any name ending
  in ``_API_KEY``, ``_KEY``, ``_TOKEN``, ``_SECRET``, ``_PASSWORD`` or ``_PASSPHRASE``, and any
  variable a spec named (:func:`register_key_env`), when the value has at least
  :data:`MIN_SECRET_CHARS` characters;
- passwords seen in URLs in this process (:func:`register_secret`);
- the userinfo of any URL in the text, anything shaped like an OpenAI key (``sk-...``) and the
  key a 401 message quotes ("Incorrect API key provided: ...").

>>> redact("GET http://bob:hunter22@10.0.0.1/v1 failed")
'GET http://[redacted]@10.0.0.1/v1 failed'
>>> strip_userinfo("https://bob:hunter22@host:8443/v1")
'https://host:8443/v1'
"""

from __future__ import annotations

import logging
import os
import re
from typing import Any
from urllib.parse import urlsplit, urlunsplit

KEY_ENV_SUFFIXES = ("_API_KEY", "_KEY", "_TOKEN", "_SECRET", "_PASSWORD", "_PASSPHRASE")
MIN_SECRET_CHARS = 6
REDACTED = "[redacted]"
_KEY_LIKE = re.compile(r"sk-\S+")
# OpenAI-style 401 texts quote the key they refused, whatever its shape.
_QUOTED_KEY = re.compile(r"(?i)(api key provided: )(?!sk-)(?!\[redacted\])\S+")
_USERINFO = re.compile(r"(?<=://)[^/\s@]+@")
_named_envs: set[str] = {"OPENAI_API_KEY"}
_url_secrets: set[str] = set()


def register_key_env(name: str) -> None:
    """Treat the environment variable ``name`` as holding a key (a spec named it)."""
    _named_envs.add(name)


def register_secret(value: str) -> None:
    """Redact ``value`` from now on (a password read from a URL)."""
    if len(value) >= MIN_SECRET_CHARS:
        _url_secrets.add(value)


def holds_key(name: str) -> bool:
    """Whether the environment variable ``name`` is one whose value is a secret."""
    return name in _named_envs or name.upper().endswith(KEY_ENV_SUFFIXES)


def secret_values() -> list[str]:
    """Every secret currently known, longest first (so a key's prefix never hides the rest)."""
    values = {v for k, v in os.environ.items() if holds_key(k) and len(v) >= MIN_SECRET_CHARS}
    return sorted(values | _url_secrets, key=len, reverse=True)


def redact(text: str) -> str:
    """``text`` with every known secret, URL userinfo and ``sk-...`` key replaced.

    >>> redact("Incorrect API key provided: sk-proj-abc**xyz.")
    'Incorrect API key provided: sk-[redacted]'
    >>> redact("Incorrect API key provided: tok-12**89.")
    'Incorrect API key provided: [redacted]'
    """
    for secret in secret_values():
        text = text.replace(secret, REDACTED)
    text = _USERINFO.sub(f"{REDACTED}@", text)
    text = _QUOTED_KEY.sub(rf"\g<1>{REDACTED}", text)
    return _KEY_LIKE.sub(f"sk-{REDACTED}", text)


def strip_userinfo(url: str) -> str:
    """``url`` without ``user:password@``; every other part unchanged."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def without_userinfo(text: str) -> str:
    """``text`` (a judge spec, a config value) with the userinfo of every URL in it removed.

    >>> without_userinfo("logprob:m@http://bob:hunter22@10.0.0.1/v1#VLLM_KEY")
    'logprob:m@http://10.0.0.1/v1#VLLM_KEY'
    """
    return _USERINFO.sub("", text)


def without_userinfo_in(value: Any) -> Any:
    """``value`` (JSON-like data) with :func:`without_userinfo` applied to every string in it."""
    if isinstance(value, str):
        return without_userinfo(value)
    if isinstance(value, dict):
        return {key: without_userinfo_in(item) for key, item in value.items()}
    if isinstance(value, list):
        return [without_userinfo_in(item) for item in value]
    return value


def url_credentials(url: str) -> tuple[str, str] | None:
    """``(user, password)`` written into ``url``, or None when it has no userinfo."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return None
    return parts.username or "", parts.password or ""


class RedactingFilter(logging.Filter):
    """A logging filter that redacts every record's message (installed by the CLI)."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True
