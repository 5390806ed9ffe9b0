"""A scriptable OpenAI-compatible chat server on 127.0.0.1, for tests that must not leave the machine."""

from __future__ import annotations

import dataclasses
import json
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FakeReply:
    """
    One scripted answer of the fake server.

    :param text: the assistant's message (for status 200) or the error message (otherwise)
    :param status: the HTTP status
    :param headers: extra response headers, e.g. ``{"Retry-After": "1"}``
    :param delay_s: how long to wait before answering, on top of the server's latency
    :param prompt_tokens: the reported prompt tokens; by default the words in the request's messages
    :param completion_tokens: the reported completion tokens; by default the words in ``text``
    :param body: the raw response body, sent as is instead of a chat completion (a fault: HTML, bad JSON)
    :param content_type: the ``Content-Type`` header of ``body``
    :param bytes_per_s: send the body this slowly, byte by byte (a trickling server); ``None``: at once
    :param finish_reason: the choice's ``finish_reason`` (``"length"``: a reply cut by ``max_tokens``)
    :param logprobs: the choice's ``logprobs`` field, sent as is (``None``: a server without them)
    """

    text: str = "ok"
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    delay_s: float = 0.0
    prompt_tokens: int | None = None
    completion_tokens: int | None = None
    body: bytes | None = None
    content_type: str = "application/json"
    bytes_per_s: float | None = None
    finish_reason: str = "stop"
    logprobs: Any = None

    @classmethod
    def with_top_logprobs(cls, top_logprobs: Mapping[str, float], **fields: Any) -> FakeReply:
        """
        A one-token reply (the most probable token) with its alternatives, in the chat shape
        (``logprobs.content[0].top_logprobs``) that OpenAI and llama.cpp send.

        :param top_logprobs: token -> log-probability of the alternatives
        :param fields: other fields of the reply
        :return: the reply
        """
        ranked = sorted(top_logprobs.items(), key=lambda item: -item[1])
        alternatives = [{"token": token, "logprob": value, "bytes": None} for token, value in ranked]
        first = alternatives[0] if alternatives else {"token": "", "logprob": 0.0, "bytes": None}
        content = [{**first, "top_logprobs": alternatives}]
        fields.setdefault("text", first["token"])
        fields.setdefault("finish_reason", "length")
        fields.setdefault("completion_tokens", 1)
        return cls(logprobs={"content": content}, **fields)

    @classmethod
    def rate_limited(cls, retry_after: str | None = "1", retry_after_ms: str | None = None) -> FakeReply:
        """
        A 429 reply.

        :param retry_after: the ``Retry-After`` header (seconds or an HTTP date), ``None`` to omit it
        :param retry_after_ms: the ``retry-after-ms`` header, ``None`` to omit it
        :return: the reply
        """
        headers = {}
        if retry_after is not None:
            headers["Retry-After"] = retry_after
        if retry_after_ms is not None:
            headers["retry-after-ms"] = retry_after_ms
        return cls(text="Rate limit reached", status=429, headers=headers)

    @classmethod
    def server_error(cls, status: int = 500) -> FakeReply:
        """
        A server error reply.

        :param status: the HTTP status
        :return: the reply
        """
        return cls(text="The server had an error while processing your request", status=status)

    @classmethod
    def slow(cls, delay_s: float, text: str = "too late") -> FakeReply:
        """
        A reply that comes only after ``delay_s`` (longer than the client's timeout, say).

        :param delay_s: seconds to wait before answering
        :param text: the assistant's message
        :return: the reply
        """
        return cls(text=text, delay_s=delay_s)

    @classmethod
    def hang(cls, delay_s: float = 3600.0) -> FakeReply:
        """
        A reply that never comes (until the server stops).

        :param delay_s: how long the server holds the connection before answering
        :return: the reply
        """
        return cls(text="too late", delay_s=delay_s)

    @classmethod
    def trickle(cls, text: str = "Action: 2", bytes_per_s: float = 1.0) -> FakeReply:
        """
        A chat completion sent one byte at a time: every read succeeds, the whole takes minutes.

        :param text: the assistant's message
        :param bytes_per_s: the sending rate
        :return: the reply
        """
        return cls(text=text, bytes_per_s=bytes_per_s)

    @classmethod
    def html(cls, status: int = 200) -> FakeReply:
        """
        A web page instead of JSON, as a proxy, a login wall or a wrong base URL gives.

        :param status: the HTTP status
        :return: the reply
        """
        page = b"<!DOCTYPE html><html><head><title>Welcome</title></head><body>It works!</body></html>"
        return cls(status=status, body=page, content_type="text/html; charset=utf-8")

    @classmethod
    def invalid_json(cls) -> FakeReply:
        """:return: a status-200 reply whose body is cut-off JSON"""
        return cls(
            body=b'{"id": "chatcmpl-1", "choices": [{"message": {"content": "Act',
            content_type="application/json",
        )

    @classmethod
    def nested_json(cls, depth: int = 100_000) -> FakeReply:
        """
        A status-200 reply of JSON nested deeper than any parser's recursion limit.

        :param depth: how many arrays deep
        :return: the reply
        """
        return cls(body=b"[" * depth + b"]" * depth)

    @classmethod
    def huge(cls, n_chars: int = 1_000_000, answer: str = "Action: 2") -> FakeReply:
        """
        A valid chat completion whose message is ``n_chars`` of free text ending in ``answer``.

        :param n_chars: length of the text before the answer
        :param answer: the last line of the message
        :return: the reply
        """
        filler = "I look around and think about where the key may be. " * (n_chars // 53 + 1)
        return cls(text=filler[:n_chars] + "\n" + answer)


@dataclass(frozen=True)
class ReceivedRequest:
    """
    A request as the fake server received it.

    :param method: the HTTP method
    :param path: the request path, e.g. ``/v1/chat/completions``
    :param headers: the headers, names in lower case
    :param body: the decoded JSON body (``{}`` when there was none, or it was a file upload)
    :param raw: the body's bytes as received
    :param received_at: when it arrived (``time.monotonic()``)
    """

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]
    raw: bytes = b""
    received_at: float = field(default_factory=time.monotonic)


Responder = Callable[[dict[str, Any]], str | FakeReply]
Route = Callable[[ReceivedRequest], tuple[int, dict[str, str], Any]]


def echo_responder(request: dict[str, Any]) -> str:
    """
    The default responder: a reply that depends only on the last message, so equal requests get equal replies.

    :param request: the request's JSON body
    :return: the assistant's message
    """
    messages = request.get("messages") or [{"content": ""}]
    return f"echo: {messages[-1].get('content', '')}"


def _count_words(text: str) -> int:
    return len(text.split())


class FakeOpenAIServer:
    """
    An OpenAI-compatible server on 127.0.0.1 (random free port) that answers ``POST /v1/chat/completions``.

    Scripted replies (``enqueue``) are served first, in order, to whichever requests come; after them
    ``responder`` answers. Every request is counted and logged (``requests``), headers included.

    :param responder: answers a request body with the assistant's text or a ``FakeReply``
    :param latency_s: how long every reply waits, to stand in for a model's thinking time
    :param model: the model name listed by ``GET /v1/models``
    :param rate_limit_rpm: answer chat requests beyond this many per minute with 429 (a token bucket
        refilled continuously, holding ``rate_limit_burst`` requests), and send ``x-ratelimit-*``
        headers with every chat reply; ``None`` for no limit
    :param rate_limit_burst: how many requests the bucket holds; by default one second's worth (at least 2)
    """

    def __init__(
        self,
        responder: Responder = echo_responder,
        latency_s: float = 0.0,
        model: str = "fake-model",
        rate_limit_rpm: float | None = None,
        rate_limit_burst: float | None = None,
    ) -> None:
        self.responder = responder
        self.latency_s = latency_s
        self.model = model
        self.rate_limit_rpm = rate_limit_rpm
        self.rate_limit_burst = (
            rate_limit_burst if rate_limit_burst is not None else max(2.0, (rate_limit_rpm or 0.0) / 60.0)
        )
        self._bucket = self.rate_limit_burst
        self._bucket_time = time.monotonic()
        self._rate_limited = 0
        self._in_flight = 0
        self._peak_in_flight = 0
        self._routes: list[tuple[str, str, Route]] = []
        self._lock = threading.Lock()
        self._script: deque[str | FakeReply] = deque()
        self._requests: list[ReceivedRequest] = []
        self._completion_ids = 0
        # Set on stop so that slow replies stop sleeping and the handler threads end.
        self._stopping = threading.Event()
        self._httpd: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def base_url(self) -> str:
        """The URL to give a client, e.g. ``http://127.0.0.1:41234/v1``."""
        if self._httpd is None:
            raise RuntimeError("the fake server is not running: call start() first")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def start(self) -> FakeOpenAIServer:
        """
        Listen on a free port and serve from a daemon thread.

        :return: this server
        """
        if self._httpd is not None:
            raise RuntimeError("the fake server is already running")
        self._stopping.clear()
        self._httpd = _Server(("127.0.0.1", 0), _make_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; replies still waiting are cut short."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeOpenAIServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def enqueue(self, *replies: str | FakeReply) -> None:
        """
        Script the next replies: each is used once, in order, before the responder is asked.

        :param replies: assistant texts or ``FakeReply`` objects
        """
        with self._lock:
            self._script.extend(replies)

    @property
    def requests(self) -> list[ReceivedRequest]:
        """A copy of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many requests have been received (any path, any outcome)."""
        with self._lock:
            return len(self._requests)

    @property
    def rate_limited_count(self) -> int:
        """How many chat requests were refused with 429 for exceeding ``rate_limit_rpm``."""
        with self._lock:
            return self._rate_limited

    @property
    def peak_in_flight(self) -> int:
        """The most chat requests that were being answered at once."""
        with self._lock:
            return self._peak_in_flight

    def add_route(self, method: str, path_prefix: str, route: Route) -> None:
        """
        Answer further endpoints (e.g. the Batch API's, see ``sb3_llmae.testing.batch``).

        :param method: ``"GET"`` or ``"POST"``
        :param path_prefix: requests whose path starts with it go to ``route``, e.g. ``"/v1/files"``
        :param route: answers a request with status, extra headers and the body (JSON-serialisable, or bytes)
        """
        with self._lock:
            self._routes.append((method, path_prefix, route))

    def _route_for(self, method: str, path: str) -> Route | None:
        with self._lock:
            for route_method, prefix, route in self._routes:
                if route_method == method and path.startswith(prefix):
                    return route
        return None

    def _take_rate_limit_slot(self) -> tuple[bool, dict[str, str]]:
        """
        Take one request from the rate limit's bucket, if it holds one.

        :return: whether the request may proceed, and the ``x-ratelimit-*`` headers to send
        """
        if self.rate_limit_rpm is None:
            return True, {}
        rate_per_s = self.rate_limit_rpm / 60.0
        with self._lock:
            now = time.monotonic()
            self._bucket = min(self.rate_limit_burst, self._bucket + (now - self._bucket_time) * rate_per_s)
            self._bucket_time = now
            allowed = self._bucket >= 1.0
            if allowed:
                self._bucket -= 1.0
            else:
                self._rate_limited += 1
            wait_s = max(1.0 - self._bucket, 0.0) / rate_per_s
            headers = {
                "x-ratelimit-limit-requests": str(int(self.rate_limit_rpm)),
                "x-ratelimit-remaining-requests": str(int(self._bucket)),
                "x-ratelimit-reset-requests": f"{wait_s:.3f}s",
            }
        if not allowed:
            headers["retry-after-ms"] = str(max(1, round(wait_s * 1000)))
        return allowed, headers

    def reset(self) -> None:
        """Forget the received requests and the replies still scripted."""
        with self._lock:
            self._requests.clear()
            self._script.clear()

    def _log_request(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_scripted_reply(self) -> str | FakeReply | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _next_completion_id(self) -> str:
        with self._lock:
            self._completion_ids += 1
            return f"chatcmpl-fake-{self._completion_ids}"

    def _wait(self, seconds: float) -> None:
        if seconds > 0:
            self._stopping.wait(seconds)

    def _answer(self, request: ReceivedRequest) -> tuple[int, dict[str, str], dict[str, Any] | FakeReply]:
        """
        The response to a chat completion request.

        :param request: the received request
        :return: status, extra headers and JSON body (or the reply, when it has a raw body or trickles)
        """
        self._log_request(request)
        allowed, limit_headers = self._take_rate_limit_slot()
        if not allowed:
            return 429, limit_headers, _error_body("Rate limit reached for requests", "rate_limit_error")
        with self._lock:
            self._in_flight += 1
            self._peak_in_flight = max(self._peak_in_flight, self._in_flight)
        try:
            status, headers, body = self._reply(request)
        finally:
            with self._lock:
                self._in_flight -= 1
        return status, {**limit_headers, **headers}, body

    def _reply(self, request: ReceivedRequest) -> tuple[int, dict[str, str], dict[str, Any] | FakeReply]:
        """
        The scripted or responder's reply to a chat completion request.

        :param request: the received request
        :return: status, extra headers and JSON body
        """
        scripted = self._take_scripted_reply()
        reply = scripted if scripted is not None else self.responder(request.body)
        if isinstance(reply, str):
            reply = FakeReply(text=reply)
        self._wait(self.latency_s + reply.delay_s)
        if reply.body is not None:
            return reply.status, dict(reply.headers), reply
        if reply.status != 200:
            if reply.status == 429:
                error_type = "rate_limit_error"
            elif reply.status >= 500:
                error_type = "server_error"
            else:
                error_type = "invalid_request_error"
            return reply.status, dict(reply.headers), _error_body(reply.text, error_type)
        messages = request.body.get("messages") or []
        prompt_tokens = (
            reply.prompt_tokens
            if reply.prompt_tokens is not None
            else sum(_count_words(str(message.get("content", ""))) for message in messages)
        )
        completion_tokens = (
            reply.completion_tokens if reply.completion_tokens is not None else _count_words(reply.text)
        )
        body = {
            "id": self._next_completion_id(),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.body.get("model", self.model),
            "choices": [
                {
                    "index": 0,
                    "message": {"role": "assistant", "content": reply.text},
                    "finish_reason": reply.finish_reason,
                    "logprobs": reply.logprobs,
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
        }
        if reply.bytes_per_s is not None:
            return 200, dict(reply.headers), dataclasses.replace(reply, body=json.dumps(body).encode("utf-8"))
        return 200, dict(reply.headers), body


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # socketserver's default backlog of 5 drops connections when dozens of workers connect at once.
    request_queue_size = 256

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that timed out has closed its socket; writing the late reply fails, as intended.
        logger.debug("fake OpenAI server: a connection from %s failed", client_address, exc_info=True)


def _make_handler(server: FakeOpenAIServer) -> type[BaseHTTPRequestHandler]:
    """
    A request handler class bound to ``server``.

    :param server: the fake server whose script and log the handler uses
    :return: the handler class
    """

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in two writes: with Nagle's algorithm the body waits for the client's
        # delayed ACK of the headers (40 ms on Linux), which would dwarf a test's latency.
        disable_nagle_algorithm = True

        def do_POST(self) -> None:
            request = self._read_request()
            route = server._route_for("POST", request.path)
            if route is not None:
                server._log_request(request)
                self._send_json(*route(request))
                return
            if request.path.rstrip("/") != "/v1/chat/completions":
                server._log_request(request)
                self._send_json(404, {}, _error_body(f"unknown path {request.path}", "invalid_request_error"))
                return
            self._send_json(*server._answer(request))

        def do_GET(self) -> None:
            request = self._read_request()
            server._log_request(request)
            route = server._route_for("GET", request.path)
            if route is not None:
                self._send_json(*route(request))
            elif self.path.rstrip("/") == "/v1/models":
                body = {
                    "object": "list",
                    "data": [{"id": server.model, "object": "model", "owned_by": "fake"}],
                }
                self._send_json(200, {}, body)
            else:
                self._send_json(404, {}, _error_body(f"unknown path {self.path}", "invalid_request_error"))

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
                if server._stopping.is_set():
                    return
                self.wfile.write(payload[index : index + 1])
                self.wfile.flush()
                server._wait(1.0 / rate)

        def log_message(self, format: str, *args: Any) -> None:
            # BaseHTTPRequestHandler writes every request to stderr; route it to logging instead.
            logger.debug("fake OpenAI server: " + format, *args)

    return Handler


def _error_body(message: str, error_type: str) -> dict[str, Any]:
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}
