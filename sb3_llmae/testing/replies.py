"""What the fake OpenAI server says: the scripted replies, the requests it logs, and the JSON bodies."""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any


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


def count_words(text: str) -> int:
    """
    :param text: any text
    :return: its words, the fake server's stand-in for tokens
    """
    return len(text.split())


def error_body(message: str, error_type: str) -> dict[str, Any]:
    """
    :param message: the error message
    :param error_type: OpenAI's error type, e.g. ``"rate_limit_error"``
    :return: an error response body as OpenAI sends it
    """
    return {"error": {"message": message, "type": error_type, "param": None, "code": None}}


def error_type_of(status: int) -> str:
    """
    :param status: an HTTP error status
    :return: the OpenAI error type that goes with it
    """
    if status == 429:
        return "rate_limit_error"
    if status >= 500:
        return "server_error"
    return "invalid_request_error"


def completion_body(
    reply: FakeReply, request: ReceivedRequest, completion_id: str, model: str
) -> dict[str, Any]:
    """
    A chat completion as OpenAI sends it.

    :param reply: the reply to send (status 200)
    :param request: the request it answers
    :param completion_id: the completion's id
    :param model: the model named when the request names none
    :return: the JSON body, with token usage (by default the words of the messages and of the reply)
    """
    messages = request.body.get("messages") or []
    prompt_tokens = (
        reply.prompt_tokens
        if reply.prompt_tokens is not None
        else sum(count_words(str(message.get("content", ""))) for message in messages)
    )
    completion_tokens = (
        reply.completion_tokens if reply.completion_tokens is not None else count_words(reply.text)
    )
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": request.body.get("model", model),
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
