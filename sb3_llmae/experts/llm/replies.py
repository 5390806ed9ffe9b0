"""Reading a chat-completion reply off the wire, whatever the server sends: bounded in size, checked in shape,
in time linear in its length."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

# A chat reply is a few KB; a body over this is not one (a misrouted download, a runaway server).
MAX_REPLY_BYTES = 8 * 1024 * 1024
# The most characters of a reply kept, parsed, cached and written to transcripts. Long enough for a
# reasoning model's answer; a longer one keeps its beginning and its end (where the answer usually is).
MAX_REPLY_CHARS = 32_000
# How much of a body that is not a chat completion an error message quotes.
QUOTED_CHARS = 120


class MalformedReplyError(ValueError):
    """The server's answer to a chat request is not a chat completion (HTML, invalid JSON, too large, ...)."""


@dataclass(frozen=True)
class ReplyContent:
    """
    What a chat completion carries that the client uses.

    :param text: the assistant's message ("" when the server sent none), at most ``MAX_REPLY_CHARS``
    :param prompt_tokens: prompt tokens reported by the server (0 when it reports no usage)
    :param completion_tokens: completion tokens reported by the server (0 when it reports no usage)
    :param finish_reason: why the reply ended, as the server says (``"stop"``, ``"length"``: cut by
        ``max_tokens`` or the context); ``None`` when it does not say
    :param logprobs: the first choice's ``logprobs`` field as sent (read by ``experts.llm.logprobs``),
        ``None`` when there is none
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str | None = None
    logprobs: Any = None


def read_bounded(chunks: Iterable[bytes], max_bytes: int = MAX_REPLY_BYTES) -> bytes:
    """
    Read a response body, refusing one larger than ``max_bytes`` without reading the rest.

    :param chunks: the body, as it arrives
    :param max_bytes: the largest body accepted
    :return: the body
    :raises MalformedReplyError: when the body is larger
    """
    parts: list[bytes] = []
    size = 0
    for chunk in chunks:
        size += len(chunk)
        if size > max_bytes:
            raise MalformedReplyError(f"the reply is larger than {max_bytes:,} bytes, no chat completion is")
        parts.append(chunk)
    return b"".join(parts)


def bound_text(text: str, max_chars: int = MAX_REPLY_CHARS) -> str:
    """
    Shorten a reply to at most ``max_chars`` characters, keeping its beginning and its end.

    :param text: the reply text
    :param max_chars: the most characters kept
    :return: the text, or its head and tail around a marker saying how much was cut
    """
    if len(text) <= max_chars:
        return text
    marker = f"\n[... {len(text) - max_chars:,} characters cut ...]\n"
    head = (max_chars - len(marker)) // 2
    tail = max_chars - len(marker) - head
    return text[:head] + marker + text[len(text) - tail :]


def _quote(body: bytes) -> str:
    text = body[:QUOTED_CHARS].decode("utf-8", errors="replace")
    return repr(text + ("..." if len(body) > QUOTED_CHARS else ""))


def _token_count(usage: Mapping[str, Any], name: str) -> int:
    value = usage.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def parse_completion_body(body: bytes, content_type: str = "application/json") -> ReplyContent:
    """
    Read a chat completion from a response body.

    :param body: the raw body of a successful (2xx) response
    :param content_type: the response's ``Content-Type`` header
    :return: the assistant's text (bounded by ``bound_text``) and the reported token usage
    :raises MalformedReplyError: naming what the body is instead (HTML, invalid or deeply nested JSON,
        JSON without a message)
    """
    if "html" in content_type.lower() or body.lstrip()[:1] == b"<":
        raise MalformedReplyError(
            f"the server sent an HTML page ({content_type or 'no content type'}), not a chat completion: "
            f"{_quote(body)}. Is the base URL the API's (it usually ends in /v1), not a web page?"
        )
    try:
        completion = json.loads(body)
    except RecursionError:
        raise MalformedReplyError("the reply is JSON nested too deeply to be a chat completion") from None
    except (UnicodeDecodeError, ValueError) as error:
        raise MalformedReplyError(f"the reply is not valid JSON ({error}): {_quote(body)}") from None
    choices = completion.get("choices") if isinstance(completion, dict) else None
    if not isinstance(choices, list):
        raise MalformedReplyError(
            f"the reply is JSON but not a chat completion (no 'choices'): {_quote(body)}"
        )
    text = ""
    finish_reason = None
    logprobs = None
    if choices:
        message = choices[0].get("message") if isinstance(choices[0], dict) else None
        if not isinstance(message, dict):
            raise MalformedReplyError(f"the reply's first choice holds no 'message': {_quote(body)}")
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            raise MalformedReplyError(
                f"the reply's message content is a {type(content).__name__}, not text: {_quote(body)}"
            )
        text = content or ""
        reason = choices[0].get("finish_reason")
        finish_reason = reason if isinstance(reason, str) else None
        logprobs = choices[0].get("logprobs")
    usage = completion.get("usage")
    usage = usage if isinstance(usage, dict) else {}
    return ReplyContent(
        text=bound_text(text),
        prompt_tokens=_token_count(usage, "prompt_tokens"),
        completion_tokens=_token_count(usage, "completion_tokens"),
        finish_reason=finish_reason,
        logprobs=logprobs,
    )
