"""One writer per run directory: ``emscope run`` holds ``<run_dir>/.emscope.lock`` throughout.

The lock is an exclusive, non-blocking ``flock`` on the file, which also records who holds it
(pid, host, start time). A second run into the same directory is refused at once with the
holder's pid and start time, instead of doing the whole study again beside it and storing every
row twice. Ray workers write under the driver's lock and never take it themselves.

The kernel drops a ``flock`` when its process dies, so a lock whose recorded holder is gone
(``kill -9``, a crash) is simply taken over; the run says so in one line. When the lock is held
but its recorded holder is a dead process on this host, a process it started (and that inherited
the lock) still holds it: that is refused too, naming both.

>>> describe_holder({"pid": 42, "host": "h", "started_at": "2026-01-01T00:00:00+0000"})
'pid 42 on h, started 2026-01-01T00:00:00+0000'
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from emscope.errors import EmscopeError

LOCK_NAME = ".emscope.lock"


class RunDirectoryBusy(EmscopeError):
    """Another emscope run holds the run directory's lock."""


def describe_holder(holder: dict[str, Any]) -> str:
    """``pid N on HOST, started TIME`` for a lock file's record."""
    if not holder:
        return "a process that has not written its pid yet"
    return (
        f"pid {holder.get('pid', '?')} on {holder.get('host', '?')}, "
        f"started {holder.get('started_at', '?')}"
    )


def pid_alive(pid: int) -> bool:
    """Whether a process ``pid`` exists on this host."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, under another user
        return True
    return True


def _read_holder(handle: IO[str]) -> dict[str, Any]:
    handle.seek(0)
    try:
        found = json.loads(handle.read() or "{}")
    except json.JSONDecodeError:
        return {}
    return found if isinstance(found, dict) else {}


def _is_dead_here(holder: dict[str, Any]) -> bool:
    pid = holder.get("pid")
    return (
        holder.get("host") == socket.gethostname() and isinstance(pid, int) and not pid_alive(pid)
    )


@contextmanager
def run_lock(run_dir: Path, say: Callable[[str], None] = print) -> Iterator[dict[str, Any]]:
    """Hold the run directory's lock for the block; refuse at once if another run holds it.

    Yields this process's record (pid, host, started_at). A stale record (its holder is dead)
    is taken over with one ``say`` line.
    """
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / LOCK_NAME
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held for the whole block
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = _read_holder(handle)
            inherited = (
                " (that process is gone; a process it started still holds the lock)"
                if _is_dead_here(holder)
                else ""
            )
            raise RunDirectoryBusy(
                f"run directory {run_dir} is in use by another emscope run: "
                f"{describe_holder(holder)}{inherited}",
                hint="wait for that run to finish (or stop it), or choose another --run-dir; "
                "two runs into one directory would each do the whole study",
            ) from None
        previous = _read_holder(handle)
        if previous:
            why = "no longer running" if _is_dead_here(previous) else "it holds no lock here"
            say(f"taking over the stale lock of {describe_holder(previous)} ({why})")
        mine = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started_at": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps(mine) + "\n")
        handle.flush()
        try:
            yield mine
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
