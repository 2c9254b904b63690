"""A small Chrome DevTools protocol client: headless Chromium opens a page, evaluates script,
collects console errors and takes screenshots. Talks only to 127.0.0.1.

>>> with Browser.launch() as browser:  # doctest: +SKIP
...     page = browser.open(Path("report.html"))
...     page.evaluate("document.title")
"""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path
from types import TracebackType
from typing import Any

CHROMIUM = Path("/usr/bin/chromium")
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-extensions",
    "--remote-debugging-address=127.0.0.1",
    "--remote-debugging-port=0",
    "--window-size=1400,1000",
)


class BrowserError(RuntimeError):
    """Chromium did not start, or a page script failed."""


class Page:
    """One tab over its DevTools websocket; events are kept for console-error checks."""

    def __init__(self, ws_url: str) -> None:
        import websocket  # websocket-client, in the dev extra

        self.ws = websocket.create_connection(ws_url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events: list[dict[str, Any]] = []
        for domain in ("Page", "Runtime", "Log"):
            self.send(f"{domain}.enable")

    def send(self, method: str, **params: Any) -> dict[str, Any]:
        self.next_id += 1
        wanted = self.next_id
        self.ws.send(json.dumps({"id": wanted, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == wanted:
                if "error" in message:
                    raise BrowserError(f"{method}: {message['error']}")
                return dict(message.get("result", {}))
            if "method" in message:
                self.events.append(message)

    def evaluate(self, expression: str, *, await_promise: bool = False) -> Any:
        result = self.send(
            "Runtime.evaluate",
            expression=expression,
            returnByValue=True,
            awaitPromise=await_promise,
        )
        if "exceptionDetails" in result:
            raise BrowserError(f"{expression!r} threw: {result['exceptionDetails']}")
        return result["result"].get("value")

    def wait_for(self, expression: str, timeout: float = 60.0) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = self.evaluate(expression)
            if value:
                return value
            time.sleep(0.05)
        raise BrowserError(f"timed out after {timeout}s waiting for {expression!r}")

    def goto(self, url: str, ready: str = "document.readyState === 'complete'") -> None:
        self.send("Page.navigate", url=url)
        self.wait_for(ready)

    def console_errors(self) -> list[str]:
        """Console errors, uncaught exceptions and error log entries seen so far."""
        self.evaluate("0")  # drain pending events
        errors = []
        for event in self.events:
            method, params = event["method"], event.get("params", {})
            if method == "Runtime.exceptionThrown":
                errors.append(json.dumps(params.get("exceptionDetails", {}))[:500])
            elif method == "Runtime.consoleAPICalled" and params.get("type") == "error":
                errors.append(json.dumps(params.get("args", []))[:500])
            elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
                errors.append(str(params["entry"].get("text"))[:500])
        return errors

    def screenshot(self, path: Path) -> Path:
        data = self.send("Page.captureScreenshot", format="png", captureBeyondViewport=False)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(data["data"]))
        return path

    def close(self) -> None:
        self.ws.close()


class Browser:
    """A headless Chromium with a fresh profile, stopped (and its profile removed) on exit."""

    def __init__(self, process: subprocess.Popen[bytes], profile: Path, port: int) -> None:
        self.process, self.profile, self.port = process, profile, port
        self.page: Page | None = None

    @classmethod
    def launch(cls, executable: Path = CHROMIUM, timeout: float = 30.0) -> Browser:
        profile = Path(tempfile.mkdtemp(prefix="emscope-chromium-"))
        process = subprocess.Popen(
            [str(executable), *FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        port_file = profile / "DevToolsActivePort"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if port_file.exists() and port_file.read_text().strip():
                port = int(port_file.read_text().split()[0])
                return cls(process, profile, port)
            if process.poll() is not None:
                break
            time.sleep(0.05)
        process.kill()
        shutil.rmtree(profile, ignore_errors=True)
        raise BrowserError(f"{executable} did not open its DevTools port within {timeout}s")

    def _targets(self) -> list[dict[str, Any]]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/json/list", timeout=10) as r:
            return list(json.load(r))

    def open(
        self, path: Path, ready: str = "document.readyState === 'complete'", fragment: str = ""
    ) -> Page:
        """A fresh page showing the local file ``path`` (+ ``#fragment``) once ``ready`` holds."""
        deadline = time.monotonic() + 10
        while True:
            pages = [t for t in self._targets() if t.get("type") == "page"]
            if pages or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        if not pages:
            raise BrowserError("Chromium has no page target")
        if self.page is not None:
            self.page.close()
        self.page = page = Page(pages[0]["webSocketDebuggerUrl"])
        # A blank page first, so a URL differing only in its fragment still loads anew.
        page.goto("about:blank", "location.href === 'about:blank'")
        page.goto(path.resolve().as_uri() + (f"#{fragment}" if fragment else ""), ready)
        return page

    def __enter__(self) -> Browser:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        if self.page is not None:
            self.page.close()
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.profile, ignore_errors=True)
