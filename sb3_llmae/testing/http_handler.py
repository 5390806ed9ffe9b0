"""The HTTP side of the fake OpenAI server: a threading server and the request handler that reads requests
and writes (possibly trickled) responses for a :class:`ChatBackend`."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

from sb3_llmae.testing.replies import FakeReply, ReceivedRequest, Route, error_body

logger = logging.getLogger(__name__)


class ChatBackend(Protocol):
    """What the handler asks of the server behind it (see :class:`~sb3_llmae.testing.FakeOpenAIServer`)."""

    model: str
    stopping: threading.Event

    def route_for(self, method: str, path: str) -> Route | None: ...

    def log_request(self, request: ReceivedRequest) -> None: ...

    def answer(self, request: ReceivedRequest) -> tuple[int, dict[str, str], dict[str, Any] | FakeReply]: ...

    def wait(self, seconds: float) -> None: ...


class QuietThreadingServer(ThreadingHTTPServer):
    """A threading HTTP server that takes many connections at once and logs failed ones at DEBUG only."""

    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when dozens of workers connect at once.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has closed its socket; writing the late reply fails, as intended.
        logger.debug("fake OpenAI server: a connection from %s failed", client_address, exc_info=True)


class FakeOpenAIHandler(BaseHTTPRequestHandler):
    """Reads a request, asks :attr:`backend` for the response and writes it, trickled where it asks."""

    backend: ChatBackend
    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's
    # delayed ACK of the headers (40 ms on Linux), which would dwarf a test's latency.
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        request = self._read_request()
        route = self.backend.route_for("POST", request.path)
        if route is not None:
            self.backend.log_request(request)
            self._send_json(*route(request))
            return
        if request.path.rstrip("/") != "/v1/chat/completions":
            self.backend.log_request(request)
            self._send_json(404, {}, error_body(f"unknown path {request.path}", "invalid_request_error"))
            return
        self._send_json(*self.backend.answer(request))

    def do_GET(self) -> None:
        request = self._read_request()
        self.backend.log_request(request)
        route = self.backend.route_for("GET", request.path)
        if route is not None:
            self._send_json(*route(request))
        elif self.path.rstrip("/") == "/v1/models":
            body = {
                "object": "list",
                "data": [{"id": self.backend.model, "object": "model", "owned_by": "fake"}],
            }
            self._send_json(200, {}, body)
        else:
            self._send_json(404, {}, error_body(f"unknown path {self.path}", "invalid_request_error"))

    def _read_request(self) -> ReceivedRequest:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        headers = {name.lower(): value for name, value in self.headers.items()}
        is_json = raw and not headers.get("content-type", "").startswith("multipart/")
        body = json.loads(raw) if is_json else {}
        return ReceivedRequest(method=self.command, path=self.path, headers=headers, body=body, raw=raw)

    def _send_json(self, status: int, headers: Mapping[str, str], body: Any) -> None:
        if isinstance(body, FakeReply):
            payload, content_type, rate = body.body or b"", body.content_type, body.bytes_per_s
        elif isinstance(body, bytes):  # a file's content (the fake Batch API's output files)
            payload, content_type, rate = body, "application/octet-stream", None
        else:
            payload, content_type, rate = json.dumps(body).encode("utf-8"), "application/json", None
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(payload)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        if rate is None:
            self.wfile.write(payload)
            return
        for index in range(len(payload)):
            if self.backend.stopping.is_set():
                return
            self.wfile.write(payload[index : index + 1])
            self.wfile.flush()
            self.backend.wait(1.0 / rate)

    def log_message(self, format: str, *args: Any) -> None:
        # BaseHTTPRequestHandler writes every request to stderr; route it to logging instead.
        logger.debug("fake OpenAI server: " + format, *args)


def make_handler(server: ChatBackend) -> type[FakeOpenAIHandler]:
    """
    :param server: the fake server whose script and log the handler uses
    :return: a request handler class bound to ``server``
    """
    return type("Handler", (FakeOpenAIHandler,), {"backend": server})
