"""The retry policy on its own: how long to wait, what counts as retryable, what the user is told."""

import random

import httpx2 as httpx
import openai
import pytest

from sb3_llmae.experts.llm.endpoint import Endpoint
from sb3_llmae.experts.llm.errors import AttemptTimedOut
from sb3_llmae.experts.llm.redaction import redact
from sb3_llmae.experts.llm.retries import classify_failure, failure_message, retry_wait

SECRET = "sk-test-SECRET-123"


def status_error(status: int, message: str, headers: dict[str, str] | None = None) -> openai.APIStatusError:
    request = httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions")
    response = httpx.Response(status, headers=headers or {}, request=request)
    return openai.APIStatusError(message, response=response, body=None)


def test_the_servers_wait_is_honoured_up_to_the_cap():
    rng = random.Random(0)
    assert retry_wait(0, retry_after=3.0, base_s=1.0, max_s=60.0, rng=rng) == 3.0
    assert retry_wait(0, retry_after=600.0, base_s=1.0, max_s=60.0, rng=rng) == 60.0


def test_backoff_doubles_with_jitter_and_stays_under_the_cap():
    rng = random.Random(0)
    for attempt in range(6):
        wait = retry_wait(attempt, None, base_s=1.0, max_s=10.0, rng=rng)
        full = min(2.0**attempt, 10.0)
        assert 0.5 * full <= wait <= full
    assert retry_wait(10_000, None, base_s=1.0, max_s=10.0, rng=rng) <= 10.0  # no overflow


@pytest.mark.parametrize(("status", "retryable"), [(408, True), (429, True), (500, True), (503, True),
                                                   (400, False), (401, False), (404, False)])  # fmt: skip
def test_which_statuses_are_retried(status, retryable):
    failure = classify_failure(status_error(status, "nope", {"retry-after": "2"}), 60.0, None)
    assert (failure.status_code, failure.retryable, failure.retry_after) == (status, retryable, 2.0)
    assert failure.cause is None  # a server's reply may echo the key: never chained


def test_timeouts_are_retried_and_named():
    failure = classify_failure(AttemptTimedOut(), 2.5, None)
    assert failure.retryable and failure.status_code is None
    assert "2.5 s timeout" in failure.reason


def test_messages_name_the_endpoint_and_never_the_key():
    endpoint = Endpoint(base_url="http://127.0.0.1:9/v1", api_key=SECRET, origin="$OPENAI_BASE_URL")
    failure = classify_failure(status_error(401, f"Incorrect API key provided: {SECRET}"), 60.0, SECRET)
    message = failure_message("m", endpoint, failure, attempts=1)
    assert SECRET not in message and SECRET not in repr(endpoint)
    assert "http://127.0.0.1:9/v1" in message and "OPENAI_API_KEY" in message


def test_redaction_removes_the_key_and_shortens():
    assert redact(f"key {SECRET} echoed", SECRET) == "key <redacted> echoed"
    assert redact("x" * 500, None, max_chars=10) == "x" * 10 + "..."
