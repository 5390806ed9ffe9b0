"""Keeping credentials off the terminal: the API key and any credentials written into a base URL
(``http://user:KEY@host/v1``, ``?api-key=KEY``) are replaced in every log line and error message of the
command line, whatever printed them (our code, the HTTP stack with ``-v``, a server echoing the key)."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping

from sb3_llmae.experts.llm.endpoint import API_KEY_ENV, BASE_URL_ENV
from sb3_llmae.experts.llm.redaction import scrub, url_credentials


def secrets_of(base_url: str | None, environ: Mapping[str, str]) -> list[str]:
    """
    :param base_url: the ``--base-url`` given, if any
    :param environ: the environment (``OPENAI_API_KEY``, ``OPENAI_BASE_URL``)
    :return: every credential to keep off the terminal
    """
    found = [
        environ.get(API_KEY_ENV, ""),
        *url_credentials(base_url),
        *url_credentials(environ.get(BASE_URL_ENV)),
    ]
    return [secret for secret in found if secret]


class Redactor(logging.Filter):
    """
    Replaces credentials in text, and (as a logging filter on a handler) in every record it emits.

    :param secrets: the credentials to replace
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = list(secrets)

    def redact(self, text: str) -> str:
        """:return: ``text`` with every credential (and its percent-encoded forms) as ``<redacted>``"""
        return scrub(text, self.secrets)

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
