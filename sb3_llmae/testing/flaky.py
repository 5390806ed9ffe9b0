"""A flaky proxy on 127.0.0.1: it forwards chat requests to another server (say a ``FakeOpenAIServer``) and
breaks chosen replies at the transport level, as a bad network or proxy does: the connection closed in
the middle of the body, reset, closed before any reply, or a body that cannot be decoded."""

from __future__ import annotations

import http.client
import logging
import socket
import struct
import threading
from collections import deque
from collections.abc import Iterable
from types import TracebackType
from typing import Literal
from urllib.parse import urlsplit

logger = logging.getLogger(__name__)

# "cut": headers and half the body, then the connection closes (httpx: RemoteProtocolError, "peer closed
# connection without sending complete message body"); "reset": a TCP reset instead of a reply
# (ConnectError / ReadError "Connection reset by peer"); "drop": closed without a reply ("Server
# disconnected without sending a response"); "garbled": the body announced as gzip but not gzip
# (DecodingError).
Fault = Literal["cut", "reset", "drop", "garbled"]
FAULTS: tuple[str, ...] = ("cut", "reset", "drop", "garbled")
_HEADER_END = b"\r\n\r\n"
_MAX_HEADER_BYTES = 65_536


class FlakyProxy:
    """
    Forwards every request to ``upstream`` and answers with its reply, except that the next scripted
    faults (``enqueue``), or ``always`` when set, break the replies instead. Each reply closes its
    connection, so that every request opens a new one.

    :param upstream: the base URL of the server behind the proxy, e.g. ``FakeOpenAIServer.base_url``
    :param always: break every reply with this fault (after the scripted ones); ``None``: forward them
    """

    def __init__(self, upstream: str, always: Fault | None = None) -> None:
        if always is not None and always not in FAULTS:
            raise ValueError(f"Unknown fault {always!r}: choose one of {', '.join(FAULTS)}.")
        parts = urlsplit(upstream)
        if parts.hostname is None or parts.port is None:
            raise ValueError(f"The upstream must be http://HOST:PORT/..., got {upstream!r}.")
        self._upstream = (parts.hostname, parts.port)
        self._prefix = parts.path.rstrip("/")
        self.always = always
        self._script: deque[Fault] = deque()
        self._lock = threading.Lock()
        self._faults_served: list[str] = []
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def base_url(self) -> str:
        """The URL to give a client, with the upstream's path, e.g. ``http://127.0.0.1:41235/v1``."""
        if self._socket is None:
            raise RuntimeError("the flaky proxy is not running: call start() first")
        return f"http://127.0.0.1:{self._socket.getsockname()[1]}{self._prefix}"

    @property
    def faults_served(self) -> list[str]:
        """The faults served so far, in order (``"forwarded"`` for a reply passed through)."""
        with self._lock:
            return list(self._faults_served)

    def enqueue(self, *faults: Fault) -> None:
        """:param faults: break the next replies with these, one each, in order"""
        for fault in faults:
            if fault not in FAULTS:
                raise ValueError(f"Unknown fault {fault!r}: choose one of {', '.join(FAULTS)}.")
        with self._lock:
            self._script.extend(faults)

    def start(self) -> FlakyProxy:
        """
        Listen on a free port of 127.0.0.1 and serve from a daemon thread.

        :return: this proxy
        """
        if self._socket is not None:
            raise RuntimeError("the flaky proxy is already running")
        self._stopping.clear()
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", 0))
        listener.listen(128)
        listener.settimeout(0.05)
        self._socket = listener
        self._thread = threading.Thread(target=self._serve, name="flaky-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._socket is None:
            return
        self._stopping.set()
        if self._thread is not None:
            self._thread.join()
        self._socket.close()
        self._socket = None
        self._thread = None

    def __enter__(self) -> FlakyProxy:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _serve(self) -> None:
        assert self._socket is not None
        while not self._stopping.is_set():
            try:
                connection, _ = self._socket.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(connection,), daemon=True).start()

    def _next_fault(self) -> Fault | None:
        with self._lock:
            fault = self._script.popleft() if self._script else self.always
            self._faults_served.append(fault or "forwarded")
            return fault

    def _handle(self, connection: socket.socket) -> None:
        try:
            with connection:
                connection.settimeout(30.0)
                request = _read_request(connection)
                if request is None:
                    return
                fault = self._next_fault()
                if fault == "reset":
                    # SO_LINGER with a zero timeout: close() sends RST instead of FIN
                    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                    return
                if fault == "drop":
                    return
                status, reason, headers, body = self._forward(*request)
                if fault == "garbled":
                    headers = [(name, value) for name, value in headers if name.lower() != "content-encoding"]
                    headers.append(("Content-Encoding", "gzip"))
                head = [f"HTTP/1.1 {status} {reason}"]
                head += [
                    f"{name}: {value}"
                    for name, value in headers
                    if name.lower() not in ("connection", "transfer-encoding", "content-length")
                ]
                head += [f"Content-Length: {len(body)}", "Connection: close"]
                connection.sendall(("\r\n".join(head)).encode("latin-1") + _HEADER_END)
                connection.sendall(body[: len(body) // 2] if fault == "cut" else body)
        except OSError:
            logger.debug("flaky proxy: a connection failed", exc_info=True)

    def _forward(
        self, method: str, path: str, headers: list[tuple[str, str]], body: bytes
    ) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream = http.client.HTTPConnection(*self._upstream, timeout=600)
        try:
            forwarded = {
                name: value
                for name, value in headers
                if name.lower() not in ("host", "connection", "accept-encoding", "content-length")
            }
            upstream.request(method, path, body=body, headers=forwarded)
            response = upstream.getresponse()
            return response.status, response.reason, list(response.getheaders()), response.read()
        finally:
            upstream.close()


def _read_request(connection: socket.socket) -> tuple[str, str, list[tuple[str, str]], bytes] | None:
    """
    :param connection: a client's connection
    :return: method, path, headers and body of the request on it, or ``None`` if it closed first
    """
    data = b""
    while _HEADER_END not in data:
        chunk = connection.recv(65_536)
        if not chunk or len(data) > _MAX_HEADER_BYTES:
            return None
        data += chunk
    head, _, body = data.partition(_HEADER_END)
    lines = head.decode("latin-1").split("\r\n")
    method, path, _ = lines[0].split(" ", 2)
    pairs = (line.partition(":") for line in lines[1:])
    headers = [(name.strip(), value.strip()) for name, _, value in pairs]
    length = next((int(value) for name, value in headers if name.lower() == "content-length"), 0)
    while len(body) < length:
        chunk = connection.recv(65_536)
        if not chunk:
            return None
        body += chunk
    return method, path, headers, body


def serve_faults(upstream: str, faults: Iterable[Fault]) -> FlakyProxy:
    """
    :param upstream: the base URL of the server behind the proxy
    :param faults: the faults of the first replies
    :return: a started proxy that breaks those replies, then forwards
    """
    proxy = FlakyProxy(upstream).start()
    proxy.enqueue(*faults)
    return proxy
