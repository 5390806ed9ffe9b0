"""When to retry a failed chat request, how long to wait first, and what to tell the user when it fails."""

from __future__ import annotations

import datetime
import email.utils
import math
import random
import time
from collections.abc import Mapping
from dataclasses import dataclass

import openai

from sb3_llmae.experts.llm.endpoint import API_KEY_ENV, Endpoint
from sb3_llmae.experts.llm.errors import AttemptTimedOut
from sb3_llmae.experts.llm.redaction import redact

# Request timeouts, rate limits and server-side failures are transient; other 4xx are the caller's mistake.
RETRYABLE_STATUS_CODES = frozenset({408, 429})
# Backoff doubles at most this many times (2 ** 32 is far beyond any cap, and keeps the float finite).
_MAX_DOUBLINGS = 32


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """
    The wait a server asks for, from its ``retry-after-ms`` or ``Retry-After`` header.

    :param headers: the response headers (any case)
    :param now: the current POSIX time, to resolve an HTTP date; defaults to ``time.time()``
    :return: seconds to wait (never negative), or ``None`` when no usable header is present
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    for name, seconds_per_unit in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = lowered.get(name)
        if value is None:
            continue
        try:
            delay = float(value) * seconds_per_unit
        except ValueError:
            continue
        if math.isfinite(delay):
            return max(delay, 0.0)
    http_date = lowered.get("retry-after")
    if http_date is None:
        return None
    try:
        moment = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        # HTTP dates are in GMT, but a "-0000" offset parses as naive.
        moment = moment.replace(tzinfo=datetime.UTC)
    now = time.time() if now is None else now
    return max(moment.timestamp() - now, 0.0)


def retry_wait(
    attempt: int, retry_after: float | None, base_s: float, max_s: float, rng: random.Random
) -> float:
    """
    How long to wait before the next attempt.

    :param attempt: the index of the attempt that just failed (0 for the first)
    :param retry_after: the wait the server asked for, if any
    :param base_s: the first backoff wait, doubled on each retry
    :param max_s: the longest wait
    :param rng: the random generator for the jitter
    :return: seconds to wait: the server's wish, else jittered exponential backoff; capped either way
    """
    if retry_after is not None:
        return min(retry_after, max_s)
    backoff = base_s * 2.0 ** min(attempt, _MAX_DOUBLINGS)
    # Jitter spreads the retries of concurrent workers so they do not hit the server in lockstep.
    return min(backoff, max_s) * rng.uniform(0.5, 1.0)


@dataclass(frozen=True)
class FailedAttempt:
    """
    What one failed attempt ran into.

    :param reason: what happened, safe to show (no API key)
    :param status_code: the HTTP status, ``None`` for timeouts and connection errors
    :param retryable: whether another attempt may succeed
    :param retry_after: the wait the server asked for, if any
    :param cause: the error to chain to the final one; ``None`` where it carries the server's reply,
        which might echo the key
    """

    reason: str
    status_code: int | None
    retryable: bool
    retry_after: float | None = None
    cause: BaseException | None = None


def classify_failure(error: Exception, timeout: float, api_key: str | None) -> FailedAttempt:
    """
    :param error: what an attempt raised: an ``openai.APIStatusError``, ``APITimeoutError``,
        ``APIConnectionError`` or :class:`AttemptTimedOut`
    :param timeout: the attempt's timeout in seconds, for the message
    :param api_key: the key, to keep out of the message
    :return: the failure
    """
    if isinstance(error, openai.APIStatusError):
        return FailedAttempt(
            reason=f"HTTP {error.status_code}: {redact(error.message, api_key)}",
            status_code=error.status_code,
            retryable=error.status_code in RETRYABLE_STATUS_CODES or error.status_code >= 500,
            retry_after=parse_retry_after(error.response.headers),
        )
    if isinstance(error, (openai.APITimeoutError, AttemptTimedOut)):
        cause = error if isinstance(error, openai.APITimeoutError) else None
        return FailedAttempt(
            f"no complete reply within the {timeout:g} s timeout", None, retryable=True, cause=cause
        )
    if isinstance(error, openai.APIConnectionError):
        underlying = error.__cause__ if error.__cause__ is not None else error
        return FailedAttempt(
            f"connection failed ({type(underlying).__name__})", None, retryable=True, cause=error
        )
    raise TypeError(f"not a request failure: {type(error).__name__}") from error


def failure_message(model: str, endpoint: Endpoint, failure: FailedAttempt, attempts: int) -> str:
    """
    What went wrong and what to do, naming the endpoint and never the key.

    :param model: the model asked
    :param endpoint: the endpoint asked
    :param failure: the last attempt's failure
    :param attempts: how many requests were sent
    :return: the error message
    """
    status_code = failure.status_code
    if status_code in (401, 403):
        advice = f"Check {API_KEY_ENV}: the endpoint refused the key"
    elif status_code == 404:
        advice = (
            f"Check that model {model!r} is served there and that the base URL ends in /v1 "
            "(e.g. http://localhost:11434/v1)"
        )
    elif status_code == 429:
        advice = "The endpoint is rate limiting: run fewer parallel workers or raise max_retries"
    elif status_code is not None and status_code >= 500:
        advice = "The server failed: check its logs, or retry later"
    elif status_code is not None:
        advice = "The endpoint rejected the request: check the model name and sampling parameters"
    elif failure.reason.startswith("no complete reply"):
        advice = "The server is overloaded or the model is slow: raise the timeout or run fewer workers"
    else:
        advice = f"Is a server running at {endpoint.base_url}? (the address comes from {endpoint.origin})"
    return (
        f"LLM request to {endpoint.base_url} (model {model!r}) failed after {attempts} attempt(s): "
        f"{failure.reason}. {advice}"
    )
