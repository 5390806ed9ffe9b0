"""What can go wrong with an LLM request."""

from __future__ import annotations


class LLMEndpointError(RuntimeError):
    """The LLM endpoint is not configured, cannot be reached or refused a request."""


class LLMRequestCancelled(RuntimeError):
    """A chat request was abandoned because :meth:`ChatClient.cancel` was called (e.g. on Ctrl-C)."""


class AttemptTimedOut(Exception):
    """One attempt took longer than the timeout as a whole (a hanging or trickling server)."""


class LLMRequestError(LLMEndpointError):
    """
    A chat request failed: either with a non-retryable error or after all retries.

    :param message: what failed and what to do about it (names the endpoint, never the API key)
    :param base_url: the endpoint the request was sent to
    :param status_code: the HTTP status of the last attempt, ``None`` for timeouts and connection errors
    :param attempts: how many requests were sent
    """

    def __init__(self, message: str, base_url: str, status_code: int | None, attempts: int) -> None:
        super().__init__(message)
        self.base_url = base_url
        self.status_code = status_code
        self.attempts = attempts
