"""A scriptable OpenAI-compatible chat server on 127.0.0.1, for tests that must not leave the machine."""

from __future__ import annotations

import dataclasses
import json
import threading
import time
from collections import deque
from types import TracebackType
from typing import Any

from sb3_llmae.testing.http_handler import QuietThreadingServer, make_handler
from sb3_llmae.testing.replies import (
    FakeReply,
    ReceivedRequest,
    Responder,
    Route,
    completion_body,
    echo_responder,
    error_body,
    error_type_of,
)

# Importable from here, where tests and benchmarks have always found them.
__all__ = ["FakeOpenAIServer", "FakeReply", "ReceivedRequest", "Responder", "Route", "echo_responder"]


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
        self.stopping = threading.Event()
        self._httpd: QuietThreadingServer | None = None
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
        self.stopping.clear()
        self._httpd = QuietThreadingServer(("127.0.0.1", 0), make_handler(self))
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-openai", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket; replies still waiting are cut short."""
        if self._httpd is None:
            return
        self.stopping.set()
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

    def route_for(self, method: str, path: str) -> Route | None:
        """
        :param method: the request's HTTP method
        :param path: the request's path
        :return: the route added for them with :meth:`add_route`, if any
        """
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

    def log_request(self, request: ReceivedRequest) -> None:
        """:param request: a received request, to count and keep in :attr:`requests`"""
        with self._lock:
            self._requests.append(request)

    def _take_scripted_reply(self) -> str | FakeReply | None:
        with self._lock:
            return self._script.popleft() if self._script else None

    def _next_completion_id(self) -> str:
        with self._lock:
            self._completion_ids += 1
            return f"chatcmpl-fake-{self._completion_ids}"

    def wait(self, seconds: float) -> None:
        """:param seconds: how long to wait; :meth:`stop` cuts the wait short"""
        if seconds > 0:
            self.stopping.wait(seconds)

    def answer(self, request: ReceivedRequest) -> tuple[int, dict[str, str], dict[str, Any] | FakeReply]:
        """
        The response to a chat completion request.

        :param request: the received request
        :return: status, extra headers and JSON body (or the reply, when it has a raw body or trickles)
        """
        self.log_request(request)
        allowed, limit_headers = self._take_rate_limit_slot()
        if not allowed:
            return 429, limit_headers, error_body("Rate limit reached for requests", "rate_limit_error")
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
        self.wait(self.latency_s + reply.delay_s)
        if reply.body is not None:
            return reply.status, dict(reply.headers), reply
        if reply.status != 200:
            return reply.status, dict(reply.headers), error_body(reply.text, error_type_of(reply.status))
        body = completion_body(reply, request, self._next_completion_id(), self.model)
        if reply.bytes_per_s is not None:
            return 200, dict(reply.headers), dataclasses.replace(reply, body=json.dumps(body).encode("utf-8"))
        return 200, dict(reply.headers), body
