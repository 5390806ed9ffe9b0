"""Server-supplied text made safe to show or store: shortened, and without the API key or any credential of
the base URL (``http://user:KEY@host/v1``, ``?api-key=KEY``) should it echo them."""

from __future__ import annotations

import re
from collections.abc import Iterable
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

REDACTED = "<redacted>"
MAX_SHOWN_CHARS = 300
# Query parameters that carry credentials (Azure's api-key, signed URLs' sig, tokens).
SECRET_QUERY_NAME = re.compile(r"key|token|secret|password|passwd|sig|auth|credential", re.IGNORECASE)
# Shorter values are not credentials (and replacing them would garble ordinary text).
MIN_SECRET_CHARS = 6

Secrets = str | Iterable[str] | None


def _forms(secrets: Secrets) -> list[str]:
    """:return: the secrets, with their percent-encoded and decoded forms, longest first"""
    if secrets is None:
        return []
    found = [secrets] if isinstance(secrets, str) else list(secrets)
    forms = {form for secret in found if secret for form in (secret, quote(secret, safe=""), unquote(secret))}
    return sorted((form for form in forms if len(form) >= MIN_SECRET_CHARS), key=len, reverse=True)


def scrub(text: str, secrets: Secrets) -> str:
    """
    :param text: any text: a reply to store, a message to show
    :param secrets: the API key, or several credentials; ``None`` when there is none
    :return: the text with every credential replaced by ``<redacted>``, otherwise whole
    """
    for secret in _forms(secrets):
        text = text.replace(secret, REDACTED)
    return text


def redact(text: str, secret: Secrets, max_chars: int = MAX_SHOWN_CHARS) -> str:
    """
    :param text: the text, e.g. a server's error message
    :param secret: the API key (or several credentials), ``None`` when there is none
    :param max_chars: the most characters kept
    :return: the text without ``secret``, cut to ``max_chars`` (marked by "...")
    """
    text = scrub(text, secret)
    return text if len(text) <= max_chars else text[:max_chars] + "..."


def url_credentials(url: str | None) -> list[str]:
    """
    :param url: a base URL, e.g. ``http://user:KEY@host/v1?api-key=KEY``
    :return: the credentials in it: the userinfo's password (or a lone user name, which some proxies use
        as a token), and the values of query parameters whose names say they are credentials
    """
    if not url:
        return []
    try:
        parts = urlsplit(url)
        password, username = parts.password, parts.username
    except ValueError:  # not a URL: nothing to find in it
        return []
    found = [password] if password else [username] if username else []
    found += [value for name, value in parse_qsl(parts.query) if value and SECRET_QUERY_NAME.search(name)]
    return found


def shown_url(url: str) -> str:
    """
    :param url: a base URL
    :return: it as it may be shown or stored: its credentials (:func:`url_credentials`) replaced
    """
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port is not None else ""
        password, username = parts.password, parts.username
    except ValueError:
        return url
    if password:
        netloc = f"{username}:{REDACTED}@{host}{port}"
    elif username:
        netloc = f"{REDACTED}@{host}{port}"
    else:
        netloc = parts.netloc
    query = "&".join(
        f"{name}={REDACTED if value and SECRET_QUERY_NAME.search(name) else quote(value, safe='')}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))
