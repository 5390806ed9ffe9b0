"""A fake of OpenAI's Batch API (files and batches endpoints) on a ``FakeOpenAIServer``, for tests."""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Literal

from sb3_llmae.testing.replies import ReceivedRequest, error_body
from sb3_llmae.testing.server import FakeOpenAIServer

BatchOutcome = Literal["completed", "expired", "failed"]
BATCH_OUTCOMES: tuple[str, ...] = ("completed", "expired", "failed")


@dataclass
class _FakeBatch:
    id: str
    input_file_id: str
    endpoint: str
    completion_window: str
    outcome: BatchOutcome
    requests: list[dict[str, Any]]
    created_at: int
    polls_left: int
    status: str = "validating"
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: dict[str, Any] | None = None
    completed: int = 0
    failed: int = 0
    metadata: dict[str, Any] = field(default_factory=dict)


class FakeBatchAPI:
    """
    The Batch API's endpoints on a running :class:`FakeOpenAIServer`: ``POST /v1/files`` (upload),
    ``GET /v1/files/{id}/content``, ``POST /v1/batches``, ``GET /v1/batches/{id}``. Each request of a
    batch is answered as ``POST /v1/chat/completions`` would answer it (the server's script and responder).

    A batch reports ``validating``, then ``in_progress`` for ``polls_to_finish`` retrievals, then its
    outcome: the next of ``outcomes`` (``"completed"`` once they run out). An ``"expired"`` batch answers
    only the first half of its requests (the rest is left for another batch, as OpenAI's do); a
    ``"failed"`` one answers none and reports a validation error.

    :param server: the running server to add the endpoints to
    :param polls_to_finish: retrievals a batch stays ``in_progress`` for
    :param outcomes: the outcomes of the next batches, in order
    """

    def __init__(
        self, server: FakeOpenAIServer, polls_to_finish: int = 1, outcomes: tuple[BatchOutcome, ...] = ()
    ) -> None:
        for outcome in outcomes:
            if outcome not in BATCH_OUTCOMES:
                raise ValueError(
                    f"Unknown batch outcome {outcome!r}: choose from {', '.join(BATCH_OUTCOMES)}."
                )
        self.server = server
        self.polls_to_finish = polls_to_finish
        self.outcomes: deque[BatchOutcome] = deque(outcomes)
        self.files: dict[str, bytes] = {}
        self.batches: dict[str, _FakeBatch] = {}
        self._lock = threading.Lock()
        self._ids = 0
        server.add_route("POST", "/v1/files", self._upload)
        server.add_route("GET", "/v1/files/", self._file_content)
        server.add_route("POST", "/v1/batches", self._create)
        server.add_route("GET", "/v1/batches/", self._retrieve)

    def _new_id(self, prefix: str) -> str:
        with self._lock:
            self._ids += 1
            return f"{prefix}-fake-{self._ids}"

    def _upload(self, request: ReceivedRequest) -> tuple[int, dict[str, str], Any]:
        content_type = request.headers.get("content-type", "")
        message = BytesParser(policy=HTTP).parsebytes(
            f"Content-Type: {content_type}\r\n\r\n".encode() + request.raw
        )
        fields: dict[str, tuple[str | None, bytes]] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            fields[str(name)] = (part.get_filename(), payload if isinstance(payload, bytes) else b"")
        if "file" not in fields:
            return 400, {}, error_body("no file in the upload", "invalid_request_error")
        filename, content = fields["file"]
        purpose = fields.get("purpose", (None, b""))[1].decode()
        file_id = self._new_id("file")
        with self._lock:
            self.files[file_id] = content
        return 200, {}, self._file_object(file_id, filename or "upload.jsonl", len(content), purpose)

    @staticmethod
    def _file_object(file_id: str, filename: str, size: int, purpose: str) -> dict[str, Any]:
        return {
            "id": file_id,
            "object": "file",
            "bytes": size,
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
        }

    def _file_content(self, request: ReceivedRequest) -> tuple[int, dict[str, str], Any]:
        parts = request.path.split("?")[0].strip("/").split("/")  # v1, files, id, content
        with self._lock:
            content = self.files.get(parts[2]) if len(parts) == 4 and parts[3] == "content" else None
        if content is None:
            return 404, {}, error_body(f"No such file: {request.path}", "invalid_request_error")
        return 200, {}, content

    def _create(self, request: ReceivedRequest) -> tuple[int, dict[str, str], Any]:
        body = request.body
        with self._lock:
            content = self.files.get(body.get("input_file_id", ""))
            outcome: BatchOutcome = self.outcomes.popleft() if self.outcomes else "completed"
        if content is None:
            return 400, {}, error_body(f"No such file: {body.get('input_file_id')}", "invalid_request_error")
        lines = [json.loads(line) for line in content.decode().splitlines() if line.strip()]
        batch = _FakeBatch(
            id=self._new_id("batch"),
            input_file_id=body["input_file_id"],
            endpoint=body.get("endpoint", ""),
            completion_window=body.get("completion_window", ""),
            outcome=outcome,
            requests=lines,
            created_at=int(time.time()),
            polls_left=self.polls_to_finish,
            metadata=body.get("metadata") or {},
        )
        with self._lock:
            self.batches[batch.id] = batch
        return 200, {}, self._batch_object(batch)

    def _retrieve(self, request: ReceivedRequest) -> tuple[int, dict[str, str], Any]:
        batch_id = request.path.split("?")[0].rstrip("/").split("/")[-1]
        with self._lock:
            batch = self.batches.get(batch_id)
        if batch is None:
            return 404, {}, error_body(f"No such batch: {batch_id}", "invalid_request_error")
        if batch.status == "validating":
            batch.status = "in_progress"
        elif batch.status == "in_progress":
            if batch.polls_left > 0:
                batch.polls_left -= 1
            else:
                self._finish(batch)
        return 200, {}, self._batch_object(batch)

    def _finish(self, batch: _FakeBatch) -> None:
        if batch.outcome == "failed":
            batch.status = "failed"
            batch.errors = {
                "object": "list",
                "data": [
                    {"code": "invalid_request", "message": "The fake batch was told to fail.", "line": 1}
                ],
            }
            return
        answered = (
            batch.requests if batch.outcome == "completed" else batch.requests[: len(batch.requests) // 2]
        )
        output: list[str] = []
        errors: list[str] = []
        for index, line in enumerate(answered):
            chat_request = ReceivedRequest(
                method="POST", path=line.get("url", ""), headers={}, body=line.get("body", {})
            )
            status, _, body = self.server._reply(chat_request)
            entry = {
                "id": f"batch_req_{batch.id}_{index}",
                "custom_id": line.get("custom_id"),
                "response": {"status_code": status, "request_id": f"req_{index}", "body": body},
                "error": None,
            }
            (output if status == 200 else errors).append(json.dumps(entry))
        batch.completed, batch.failed = len(output), len(errors)
        if output:
            batch.output_file_id = self._new_id("file")
            self.files[batch.output_file_id] = ("\n".join(output) + "\n").encode()
        if errors:
            batch.error_file_id = self._new_id("file")
            self.files[batch.error_file_id] = ("\n".join(errors) + "\n").encode()
        batch.status = batch.outcome

    @staticmethod
    def _batch_object(batch: _FakeBatch) -> dict[str, Any]:
        in_progress = batch.status == "in_progress"
        return {
            "id": batch.id,
            "object": "batch",
            "endpoint": batch.endpoint,
            "input_file_id": batch.input_file_id,
            "completion_window": batch.completion_window,
            "status": batch.status,
            "created_at": batch.created_at,
            "output_file_id": batch.output_file_id,
            "error_file_id": batch.error_file_id,
            "errors": batch.errors,
            "metadata": batch.metadata,
            "request_counts": {
                "total": len(batch.requests),
                # Half way while in progress, so that a progress bar has something to show.
                "completed": len(batch.requests) // 2 if in_progress else batch.completed,
                "failed": batch.failed,
            },
        }
