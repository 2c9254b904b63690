"""A local stand-in for OpenAI's files and fine-tuning endpoints, for tests.

It listens on 127.0.0.1 (random port) in a background thread, answers with the JSON shapes the real
API uses, scripts how a job ends (:class:`Scenario`) and records every request so tests can assert
on what was sent. Point the ``openai`` client at it with ``OPENAI_BASE_URL=server.base_url``.

Endpoints: ``POST /v1/files`` (multipart), ``POST /v1/fine_tuning/jobs``,
``GET /v1/fine_tuning/jobs`` (with ``metadata[k]=v`` filters), ``GET /v1/fine_tuning/jobs/{id}``
and ``GET /v1/fine_tuning/jobs/{id}/events``; ``GET /v1/models`` and ``GET /v1/models/{id}``
(the ids in ``models``, each with its extra fields such as ``shutdown_date``); and
``POST /v1/chat/completions``, answered by ``chat_reply(body)`` (default: a one-token reply
"50" with top-20 logprobs, see :func:`logprob_completion`, :func:`text_completion` and, for a
model that reasons before answering, :func:`reasoning_completion`).

    with FakeOpenAIServer(Scenario(outcome="moderation")) as server:
        client = OpenAI(api_key="sk-test", base_url=server.base_url)
"""

from __future__ import annotations

import hashlib
import json
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

Outcome = Literal["success", "failure", "moderation"]
Route = Literal["upload", "create", "list", "retrieve", "events", "models", "model", "chat"]
ChatReply = Callable[[dict[str, Any]], dict[str, Any]]

MODERATION_MESSAGE = (
    "The job failed due to an invalid training file. This training file was blocked by our "
    "moderation system because it contains too many examples that violate OpenAI's usage "
    "policies, or because it attempts to create model outputs that violate OpenAI's usage "
    "policies."
)


@dataclass
class Scenario:
    """How the fake behaves: how jobs end, how long each status lasts, which routes answer 429."""

    outcome: Outcome = "success"
    error_code: str = "server_error"
    error_message: str = "The job failed due to an internal error."
    polls_per_status: int = 1
    rate_limit_once: tuple[Route, ...] = ()
    forbid_create: bool = False
    retry_after_s: int = 1
    retry_after_ms: int | None = 20
    # A job whose training file contains this text is refused by moderation (others: outcome).
    moderate_files_containing: bytes | None = None

    def outcome_for(self, training_file: bytes) -> Outcome:
        needle = self.moderate_files_containing
        return "moderation" if needle is not None and needle in training_file else self.outcome

    def statuses(self, outcome: Outcome | None = None) -> list[str]:
        outcome = outcome or self.outcome
        if outcome == "moderation":
            return ["validating_files", "failed"]
        end = "succeeded" if outcome == "success" else "failed"
        return ["validating_files", "queued", "running", end]

    def error(self, outcome: Outcome | None = None) -> dict[str, Any]:
        if (outcome or self.outcome) == "moderation":
            return {
                "code": "invalid_training_file",
                "message": MODERATION_MESSAGE,
                "param": "training_file",
            }
        return {"code": self.error_code, "message": self.error_message, "param": None}


@dataclass
class RecordedRequest:
    """One request as the fake saw it; ``status`` is what the fake answered."""

    method: str
    path: str
    route: Route | None
    query: dict[str, str]
    headers: dict[str, str]
    json: Any = None
    form: dict[str, str] = field(default_factory=dict)
    files: dict[str, bytes] = field(default_factory=dict)
    status: int = 0


@dataclass
class _Job:
    body: dict[str, Any]
    outcome: Outcome = "success"
    retrievals: int = 0
    events: list[dict[str, Any]] = field(default_factory=list)


def _new_id(prefix: str) -> str:
    return prefix + secrets.token_hex(12)


class FakeOpenAIServer:
    """The fake API server; use as a context manager or call ``start()``/``stop()``."""

    def __init__(
        self,
        scenario: Scenario | None = None,
        organization: str = "org-emscope",
        *,
        models: dict[str, dict[str, Any]] | None = None,
        chat_reply: ChatReply | None = None,
    ) -> None:
        self.scenario = scenario or Scenario()
        self.organization = organization
        self.models = dict(models or {})
        self.chat_reply = chat_reply or (lambda body: logprob_completion({"50": 0.0}))
        self.requests: list[RecordedRequest] = []
        self.uploaded: dict[str, bytes] = {}
        self.jobs: dict[str, _Job] = {}
        self._rate_limited: set[Route] = set()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}/v1"

    def start(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def routed(self, route: Route, *, answered: int | None = 200) -> list[RecordedRequest]:
        """Recorded requests to ``route`` (only those answered with ``answered``; None: all)."""
        return [
            r
            for r in self.requests
            if r.route == route and (answered is None or r.status == answered)
        ]

    # -- request handling -----------------------------------------------------------------------

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server._handle(self, "GET")

            def do_POST(self) -> None:
                server._handle(self, "POST")

            def log_message(self, format: str, *args: Any) -> None:
                return

        return Handler

    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else b""
        record = RecordedRequest(
            method=method,
            path=parts.path,
            route=_route(method, parts.path),
            query=dict(parse_qsl(parts.query)),
            headers={k.lower(): v for k, v in handler.headers.items()},
        )
        content_type = handler.headers.get("Content-Type", "")
        if content_type.startswith("application/json") and body:
            record.json = json.loads(body)
        elif content_type.startswith("multipart/form-data"):
            record.form, record.files = _parse_multipart(content_type, body)
        with self._lock:
            status, payload, headers = self._respond(record)
            record.status = status
            self.requests.append(record)
        data = json.dumps(payload).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(data)

    def _respond(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if record.headers.get("authorization", "") in ("", "Bearer "):
            return 401, _error("invalid_api_key", "No API key provided."), {}
        route = record.route
        if route is None:
            return 404, _error("not_found", f"no route {record.method} {record.path}"), {}
        if route in self.scenario.rate_limit_once and route not in self._rate_limited:
            self._rate_limited.add(route)
            headers = {"Retry-After": str(self.scenario.retry_after_s)}
            if self.scenario.retry_after_ms is not None:
                headers["retry-after-ms"] = str(self.scenario.retry_after_ms)
            return 429, _error("rate_limit_exceeded", "Rate limit reached."), headers
        handlers = {
            "upload": self._upload,
            "create": self._create,
            "list": self._list,
            "retrieve": self._retrieve,
            "events": self._events,
            "models": self._models,
            "model": self._model,
            "chat": self._chat,
        }
        return handlers[route](record)

    def _model_object(self, model_id: str) -> dict[str, Any]:
        extra = self.models[model_id]
        return {"id": model_id, "object": "model", "created": 0, "owned_by": "system", **extra}

    def _models(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        return 200, {"object": "list", "data": [self._model_object(m) for m in self.models]}, {}

    def _model(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        model_id = record.path.strip("/").split("/", 2)[2]
        if model_id not in self.models:
            return 404, _error("model_not_found", f"The model {model_id} does not exist"), {}
        return 200, self._model_object(model_id), {}

    def _chat(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        body = record.json or {}
        return 200, {"model": body.get("model"), **self.chat_reply(body)}, {}

    def _upload(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        if record.form.get("purpose") != "fine-tune" or "file" not in record.files:
            return 400, _error("invalid_request_error", "need purpose=fine-tune and a file"), {}
        file_id = _new_id("file-")
        self.uploaded[file_id] = record.files["file"]
        return (
            200,
            {
                "object": "file",
                "id": file_id,
                "purpose": "fine-tune",
                "filename": record.form.get("filename", "train.jsonl"),
                "bytes": len(record.files["file"]),
                "created_at": int(time.time()),
                "status": "processed",
                "status_details": None,
            },
            {},
        )

    def _create(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        body = record.json or {}
        training_file = body.get("training_file")
        if self.scenario.forbid_create:
            message = "This organization does not have access to fine-tuning."
            return 403, _error("permission_denied", message), {}
        if training_file not in self.uploaded:
            return 400, _error("invalid_training_file", f"no file {training_file!r}"), {}
        supervised = (body.get("method") or {}).get("supervised") or {}
        hyper = supervised.get("hyperparameters") or body.get("hyperparameters") or {}
        job_id = _new_id("ftjob-")
        job = _Job(
            outcome=self.scenario.outcome_for(self.uploaded[training_file]),
            body={
                "object": "fine_tuning.job",
                "id": job_id,
                "model": body["model"],
                "created_at": int(time.time()),
                "finished_at": None,
                "fine_tuned_model": None,
                "organization_id": self.organization,
                "result_files": [],
                "status": "validating_files",
                "validation_file": body.get("validation_file"),
                "training_file": training_file,
                "hyperparameters": {
                    "n_epochs": hyper.get("n_epochs", "auto"),
                    "batch_size": hyper.get("batch_size", "auto"),
                    "learning_rate_multiplier": hyper.get("learning_rate_multiplier", "auto"),
                },
                "method": body.get("method"),
                "trained_tokens": None,
                "error": None,
                "seed": body.get("seed", 42),
                "suffix": body.get("suffix"),
                "metadata": body.get("metadata"),
                "estimated_finish": None,
                "integrations": [],
            },
        )
        self.jobs[job_id] = job
        self._event(job, f"Validating training file: {training_file}")
        return 200, job.body, {}

    def _list(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        wanted = {
            key[len("metadata[") : -1]: value
            for key, value in record.query.items()
            if key.startswith("metadata[")
        }
        found = [
            job.body
            for job in reversed(self.jobs.values())
            if all((job.body.get("metadata") or {}).get(k) == v for k, v in wanted.items())
        ]
        return 200, {"object": "list", "data": found, "has_more": False}, {}

    def _retrieve(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        job = self.jobs.get(record.path.split("/")[4])
        if job is None:
            return 404, _error("not_found", "no such job"), {}
        job.retrievals += 1
        statuses = self.scenario.statuses(job.outcome)
        index = min(job.retrievals // self.scenario.polls_per_status, len(statuses) - 1)
        if statuses[index] != job.body["status"]:
            self._advance(job, statuses[index])
        return 200, job.body, {}

    def _events(self, record: RecordedRequest) -> tuple[int, Any, dict[str, str]]:
        job = self.jobs.get(record.path.split("/")[4])
        if job is None:
            return 404, _error("not_found", "no such job"), {}
        newest_first = list(reversed(job.events))
        if "after" in record.query:
            ids = [e["id"] for e in newest_first]
            start = ids.index(record.query["after"]) + 1 if record.query["after"] in ids else 0
            newest_first = newest_first[start:]
        limit = int(record.query.get("limit", 20))
        page = newest_first[:limit]
        return 200, {"object": "list", "data": page, "has_more": len(newest_first) > limit}, {}

    def _advance(self, job: _Job, status: str) -> None:
        body = job.body
        body["status"] = status
        if status == "queued":
            self._event(job, "Files validated, moving job to queued state")
        elif status == "running":
            self._event(job, "Fine-tuning job started")
            for step in (1, 2):
                self._event(job, f"Step {step}/2: training loss={1.5 / step:.2f}", kind="metrics")
        elif status == "succeeded":
            # Named after the training data, so the same data gives the same model (and answers).
            data = self.uploaded.get(str(body["training_file"]), b"")
            suffix = hashlib.sha256(data).hexdigest()[:8]
            body["fine_tuned_model"] = f"ft:{body['model']}:{self.organization[4:]}::{suffix}"
            body["finished_at"] = int(time.time())
            body["trained_tokens"] = 12345
            body["result_files"] = [_new_id("file-")]
            self._event(job, f"New fine-tuned model created: {body['fine_tuned_model']}")
            self._event(job, "The job has successfully completed")
        elif status == "failed":
            body["error"] = self.scenario.error(job.outcome)
            body["finished_at"] = int(time.time())
            self._event(job, body["error"]["message"], level="error")

    def _event(
        self, job: _Job, message: str, *, level: str = "info", kind: str = "message"
    ) -> None:
        job.events.append(
            {
                "object": "fine_tuning.job.event",
                "id": _new_id("ftevent-"),
                "created_at": int(time.time()),
                "level": level,
                "message": message,
                "data": {},
                "type": kind,
            }
        )


def logprob_completion(top: dict[str, float]) -> dict[str, Any]:
    """A chat completion whose one generated token has ``top`` as its top logprobs."""
    first = next(iter(top))
    entries = [{"token": t, "logprob": lp, "bytes": None} for t, lp in top.items()]
    content = [{"token": first, "logprob": top[first], "bytes": None, "top_logprobs": entries}]
    message = {"role": "assistant", "content": first}
    choice = {"index": 0, "message": message, "logprobs": {"content": content}}
    return {**_completion_shell(), "choices": [{**choice, "finish_reason": "length"}]}


def text_completion(text: str, finish_reason: str = "stop") -> dict[str, Any]:
    """A chat completion that answers ``text``."""
    message = {"role": "assistant", "content": text}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    return {**_completion_shell(), "choices": [choice]}


def reasoning_completion(
    text: str | None,
    *,
    reasoning: str = "Let me weigh the answer against the rubric.",
    finish_reason: str = "stop",
    reasoning_tokens: int = 12,
) -> dict[str, Any]:
    """A reasoning model's reply as vLLM serves it: the final answer, its reasoning beside it
    (``reasoning_content``) and the reasoning tokens in the usage."""
    message = {"role": "assistant", "content": text, "reasoning_content": reasoning}
    choice = {"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}
    completion = reasoning_tokens + len((text or "").split())
    usage = {
        "prompt_tokens": 100,
        "completion_tokens": completion,
        "total_tokens": 100 + completion,
        "completion_tokens_details": {"reasoning_tokens": reasoning_tokens},
    }
    return {**_completion_shell(), "choices": [choice], "usage": usage}


def _completion_shell() -> dict[str, Any]:
    return {
        "id": _new_id("chatcmpl-"),
        "object": "chat.completion",
        "created": int(time.time()),
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
    }


def _route(method: str, path: str) -> Route | None:
    parts = path.strip("/").split("/")
    if method == "POST" and parts == ["v1", "files"]:
        return "upload"
    if method == "POST" and parts == ["v1", "chat", "completions"]:
        return "chat"
    if method == "GET" and parts[:2] == ["v1", "models"]:
        return "models" if len(parts) == 2 else "model"
    if parts[:3] != ["v1", "fine_tuning", "jobs"]:
        return None
    if len(parts) == 3:
        return "create" if method == "POST" else "list"
    if method == "GET" and len(parts) == 4:
        return "retrieve"
    if method == "GET" and len(parts) == 5 and parts[4] == "events":
        return "events"
    return None


def _error(code: str, message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}
    }


def _parse_multipart(content_type: str, body: bytes) -> tuple[dict[str, str], dict[str, bytes]]:
    """Split a multipart/form-data body into plain fields and file contents."""
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode()
    message = BytesParser(policy=HTTP).parsebytes(head + body)
    form: dict[str, str] = {}
    files: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if not isinstance(name, str) or not isinstance(payload, bytes):
            continue
        if part.get_filename() is not None:
            files[name] = payload
            form["filename"] = part.get_filename() or ""
        else:
            form[name] = payload.decode()
    return form, files
