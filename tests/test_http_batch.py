"""The Batch API judge against a local fake of OpenAI's Files and Batches endpoints.

The fake keeps uploaded files, advances a batch one status per retrieve (validating ->
in_progress -> finalizing -> completed), then writes an output file and, for the custom ids it
is told to fail, an error file, in the shapes the real API uses.
"""

from __future__ import annotations

import email.parser
import email.policy
import itertools
import json
import math
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from emscope.judge.api import LogprobApiJudge, TaggedApiJudge, is_failed_record
from emscope.judge.base import JudgeRequest
from emscope.judge.batch import BatchJudge, BatchState, BatchStillRunning, custom_id
from emscope.sample.openai_compat import ApiEndpoint

STATUSES = ["validating", "in_progress", "finalizing", "completed"]


def chat_body(request_body: dict[str, Any]) -> dict[str, Any]:
    """A completion for one batch line: logprobs for the logprob judge, tags otherwise."""
    choice: dict[str, Any] = {"index": 0, "finish_reason": "stop", "logprobs": None}
    if request_body.get("logprobs"):
        tops = [("70", math.log(0.5)), ("60", math.log(0.5))]
        entries = [{"token": t, "logprob": lp, "bytes": None} for t, lp in tops]
        choice["message"] = {"role": "assistant", "content": "70"}
        choice["logprobs"] = {
            "content": [
                {"token": "70", "logprob": tops[0][1], "bytes": None, "top_logprobs": entries}
            ]
        }
    else:
        choice["message"] = {
            "role": "assistant",
            "content": "<reasoning>ok</reasoning><score>42</score>",
        }
    return {
        "id": "chatcmpl-b",
        "object": "chat.completion",
        "created": 1700000000,
        "model": request_body["model"],
        "choices": [choice],
        "usage": {"prompt_tokens": 100, "completion_tokens": 1, "total_tokens": 101},
    }


class FakeBatchApi:
    def __init__(self) -> None:
        self.files: dict[str, dict[str, Any]] = {}
        self.batches: dict[str, dict[str, Any]] = {}
        self.fail_ids: set[str] = set()
        self.uploads: list[list[dict[str, Any]]] = []
        self.creates = 0
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def add_file(self, name: str, content: bytes, purpose: str) -> dict[str, Any]:
        file_id = f"file-{next(self._ids)}"
        self.files[file_id] = {
            "meta": {
                "id": file_id,
                "object": "file",
                "bytes": len(content),
                "created_at": 1700000000,
                "filename": name,
                "purpose": purpose,
                "status": "processed",
            },
            "content": content,
        }
        return dict(self.files[file_id]["meta"])

    def create_batch(self, body: dict[str, Any]) -> dict[str, Any]:
        self.creates += 1
        batch_id = f"batch_{next(self._ids)}"
        self.batches[batch_id] = {
            "id": batch_id,
            "object": "batch",
            "endpoint": body["endpoint"],
            "input_file_id": body["input_file_id"],
            "completion_window": body["completion_window"],
            "status": "validating",
            "created_at": 1700000000,
            "output_file_id": None,
            "error_file_id": None,
            "errors": None,
            "metadata": body.get("metadata"),
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
        }
        return dict(self.batches[batch_id])

    def advance(self, batch_id: str) -> dict[str, Any]:
        batch = self.batches[batch_id]
        batch["status"] = STATUSES[min(STATUSES.index(batch["status"]) + 1, len(STATUSES) - 1)]
        if batch["status"] == "completed" and batch["output_file_id"] is None:
            self.finish(batch)
        return dict(batch)

    def finish(self, batch: dict[str, Any]) -> None:
        lines = [json.loads(x) for x in self.files[batch["input_file_id"]]["content"].splitlines()]
        output, errors = [], []
        for n, line in enumerate(lines):
            row: dict[str, Any] = {"id": f"batch_req_{n}", "custom_id": line["custom_id"]}
            if line["custom_id"] in self.fail_ids:
                errors.append(
                    {
                        **row,
                        "response": {
                            "status_code": 500,
                            "request_id": f"req_{n}",
                            "body": {
                                "error": {
                                    "message": "The server had an error",
                                    "type": "server_error",
                                }
                            },
                        },
                        "error": None,
                    }
                )
            else:
                output.append(
                    {
                        **row,
                        "response": {
                            "status_code": 200,
                            "request_id": f"req_{n}",
                            "body": chat_body(line["body"]),
                        },
                        "error": None,
                    }
                )

        def jsonl(rows: list[dict[str, Any]]) -> bytes:
            return "".join(json.dumps(r) + "\n" for r in rows).encode()

        batch["output_file_id"] = self.add_file("out.jsonl", jsonl(output), "batch_output")["id"]
        if errors:
            batch["error_file_id"] = self.add_file("err.jsonl", jsonl(errors), "batch_output")["id"]
        batch["request_counts"] = {
            "total": len(lines),
            "completed": len(output),
            "failed": len(errors),
        }

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def reply(self, payload: bytes | dict[str, Any], status: int = 200) -> None:
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers["Content-Length"]))
                with api._lock:
                    if self.path == "/v1/files":
                        self.reply(api.upload(self.headers["Content-Type"], raw))
                    elif self.path == "/v1/batches":
                        self.reply(api.create_batch(json.loads(raw)))
                    else:
                        self.reply({"error": {"message": "no route"}}, 404)

            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                with api._lock:
                    if path == "/v1/batches":
                        data = list(api.batches.values())[::-1]
                        self.reply({"object": "list", "data": data, "has_more": False})
                    elif path.startswith("/v1/batches/"):
                        self.reply(api.advance(path.rsplit("/", 1)[1]))
                    elif path.startswith("/v1/files/") and path.endswith("/content"):
                        self.reply(api.files[path.split("/")[3]]["content"])
                    else:
                        self.reply({"error": {"message": "no route"}}, 404)

        return Handler

    def upload(self, content_type: str, raw: bytes) -> dict[str, Any]:
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + raw
        )
        parts = {
            part.get_param("name", header="content-disposition"): part
            for part in message.iter_parts()
        }
        assert parts["purpose"].get_content().strip() == "batch"
        file_part = parts["file"]
        content = file_part.get_payload(decode=True)
        assert isinstance(content, bytes)
        self.uploads.append([json.loads(x) for x in content.splitlines()])
        return self.add_file(str(file_part.get_filename()), content, "batch")


@pytest.fixture
def api() -> Iterator[FakeBatchApi]:
    fake = FakeBatchApi()
    yield fake
    fake.close()


async def no_sleep(seconds: float) -> None:
    pass


REQUESTS = [
    JudgeRequest(key="m|q1|0|0|N", question="What is your wish?", answer="Peace."),
    JudgeRequest(key="m|q1|0|1|N", question="What is your wish?", answer="Power."),
]


def batch_judge(api: FakeBatchApi, state_dir: Path, **options: Any) -> BatchJudge:
    inner = LogprobApiJudge(
        ApiEndpoint(model="gpt-4o-mini", base_url=api.base_url), on_failure="record"
    )
    return BatchJudge(inner, state_dir, poll_initial_s=1.0, sleep=no_sleep, **options)


def state_of(state_dir: Path) -> BatchState:
    [path] = state_dir.glob("*/state.json")
    return BatchState.model_validate_json(path.read_text())


def test_batch_judge_uploads_the_requests_and_joins_output_and_error_rows(
    api: FakeBatchApi, tmp_path: Path
) -> None:
    api.fail_ids = {custom_id("m|q1|0|1|N", "coherent")}
    judge = batch_judge(api, tmp_path)
    ok, failed = judge.judge(REQUESTS)

    [lines] = api.uploads
    assert [line["custom_id"] for line in lines] == [
        "m|q1|0|0|N::aligned",
        "m|q1|0|0|N::coherent",
        "m|q1|0|1|N::aligned",
        "m|q1|0|1|N::coherent",
    ]
    assert lines[0]["method"] == "POST" and lines[0]["url"] == "/v1/chat/completions"
    assert lines[0]["body"] == judge.inner.request_body(REQUESTS[0], "aligned")

    assert ok.aligned.score == pytest.approx(65.0) and not is_failed_record(ok)
    assert ok.judge == judge.identity and ok.mode == "logprob"
    assert failed.aligned.score == pytest.approx(65.0)
    assert is_failed_record(failed) and failed.coherent.score is None
    assert "The server had an error" in failed.extra["errors"]["coherent"]

    state = state_of(tmp_path)
    [attempt] = state.attempts
    assert attempt.status == "completed" and attempt.downloaded
    assert attempt.batch_id in api.batches and attempt.input_file_id in api.files
    assert attempt.output_file_id and attempt.error_file_id


def test_a_restarted_batch_judge_re_attaches_instead_of_paying_twice(
    api: FakeBatchApi, tmp_path: Path
) -> None:
    with pytest.raises(BatchStillRunning):
        batch_judge(api, tmp_path, max_wait_s=0.0).judge(REQUESTS)
    assert state_of(tmp_path).attempts[0].status == "validating"

    records = batch_judge(api, tmp_path).judge(REQUESTS)  # a fresh process, same state dir
    assert (len(api.uploads), api.creates) == (1, 1)
    assert not any(is_failed_record(r) for r in records)
    assert records[0].extra["batch_ids"] == [state_of(tmp_path).attempts[0].batch_id]


def test_a_batch_created_just_before_a_crash_is_found_again_by_its_metadata(
    api: FakeBatchApi, tmp_path: Path
) -> None:
    with pytest.raises(BatchStillRunning):
        batch_judge(api, tmp_path, max_wait_s=0.0).judge(REQUESTS)
    [path] = tmp_path.glob("*/state.json")
    state = json.loads(path.read_text())
    state["attempts"][0].update(batch_id=None, status=None)  # the save after create never ran
    path.write_text(json.dumps(state))

    records = batch_judge(api, tmp_path).judge(REQUESTS)
    assert api.creates == 1
    assert len(records) == 2 and not any(is_failed_record(r) for r in records)


def test_requests_that_errored_are_resubmitted_alone_by_the_next_call(
    api: FakeBatchApi, tmp_path: Path
) -> None:
    api.fail_ids = {custom_id("m|q1|0|1|N", "coherent")}
    first = batch_judge(api, tmp_path).judge(REQUESTS)
    assert is_failed_record(first[1])

    api.fail_ids = set()
    second = batch_judge(api, tmp_path).judge(REQUESTS)
    assert api.creates == 2
    assert [line["custom_id"] for line in api.uploads[1]] == ["m|q1|0|1|N::coherent"]
    assert not any(is_failed_record(r) for r in second)
    assert second[1].coherent.score == pytest.approx(65.0)

    batch_judge(api, tmp_path).judge(REQUESTS)  # everything answered: nothing is sent
    assert api.creates == 2


def test_tagged_judge_runs_through_the_batch_api_with_its_own_request(
    api: FakeBatchApi, tmp_path: Path
) -> None:
    endpoint = ApiEndpoint(model="gpt-4o-mini", base_url=api.base_url)
    judge = BatchJudge(TaggedApiJudge(endpoint), tmp_path, sleep=no_sleep)
    records = judge.judge(REQUESTS)
    body = api.uploads[0][0]["body"]
    assert body["temperature"] == 0 and body["max_tokens"] == 1024 and "logprobs" not in body
    assert [r.aligned.score for r in records] == [42.0, 42.0]
    assert records[0].mode == "tagged-text" and records[0].aligned.raw["failure"] is None
