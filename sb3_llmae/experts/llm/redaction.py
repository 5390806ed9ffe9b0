"""Server-supplied text made safe to show: shortened, and without the API key should it echo it."""

from __future__ import annotations

REDACTED = "<redacted>"
MAX_SHOWN_CHARS = 300


def redact(text: str, secret: str | None, max_chars: int = MAX_SHOWN_CHARS) -> str:
    """
    :param text: the text, e.g. a server's error message
    :param secret: the API key, ``None`` when there is none
    :param max_chars: the most characters kept
    :return: the text without ``secret``, cut to ``max_chars`` (marked by "...")
    """
    if secret:
        text = text.replace(secret, REDACTED)
    return text if len(text) <= max_chars else text[:max_chars] + "..."
