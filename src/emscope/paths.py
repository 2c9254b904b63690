"""Where emscope keeps converted models and other reusable caches."""

from __future__ import annotations

import os
from pathlib import Path

from emscope.errors import EmscopeError


def cache_dir() -> Path:
    """``$EMSCOPE_CACHE`` if set, else ``$XDG_CACHE_HOME/emscope`` or ``~/.cache/emscope``."""
    explicit = os.environ.get("EMSCOPE_CACHE")
    if explicit:
        root = Path(explicit)
    else:
        root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emscope"
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EmscopeError(
            f"cannot create the cache directory {root} ({exc.strerror or exc})",
            hint="set EMSCOPE_CACHE to a writable directory",
        ) from exc
    return root
