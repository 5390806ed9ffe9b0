"""Keeping credentials off the terminal: the API key and any credentials written into a base URL
(``http://user:KEY@host/v1``, ``?api-key=KEY``) are replaced in every log line and error message of the
command line, whatever printed them (our code, the HTTP stack with ``-v``, a server echoing the key)."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlsplit

REDACTED = "<redacted>"
# Query parameters that carry credentials (Azure's api-key, signed URLs' sig, tokens).
SECRET_QUERY_NAME = re.compile(r"key|token|secret|password|passwd|sig|auth|credential", re.IGNORECASE)
# Shorter values are not credentials (and replacing them would garble ordinary text).
MIN_SECRET_CHARS = 6
BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"


def url_secrets(url: str | None) -> list[str]:
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
    found = []
    if password:
        found.append(password)
    elif username:
        found.append(username)
    found += [value for name, value in parse_qsl(parts.query) if value and SECRET_QUERY_NAME.search(name)]
    return found


def secrets_of(base_url: str | None, environ: Mapping[str, str]) -> list[str]:
    """
    :param base_url: the ``--base-url`` given, if any
    :param environ: the environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``)
    :return: every credential to keep off the terminal, with its percent-encoded form
    """
    found = [environ.get(API_KEY_ENV, ""), *url_secrets(base_url), *url_secrets(environ.get(BASE_URL_ENV))]
    variants = {form for secret in found for form in (secret, quote(secret, safe=""), unquote(secret))}
    return sorted((secret for secret in variants if len(secret) >= MIN_SECRET_CHARS), key=len, reverse=True)


class Redactor(logging.Filter):
    """
    Replaces credentials in text, and (as a logging filter on a handler) in every record it emits.

    :param secrets: the credentials to replace
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = [secret for secret in secrets if len(secret) >= MIN_SECRET_CHARS]

    def redact(self, text: str) -> str:
        """:return: ``text`` with every credential replaced by ``<redacted>``"""
        for secret in self.secrets:
            text = text.replace(secret, REDACTED)
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        """Redact the record's message (and its traceback's text); never drops a record."""
        if not self.secrets:
            return True
        message = record.getMessage()
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        return True
