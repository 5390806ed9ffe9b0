"""
The request path of a chat client: one request to ``/chat/completions`` through the rate limiter, bounded
as a whole by the timeout and in size, ended by cancellation, and retried with backoff.
"""

from __future__ import annotations

import json
import logging
import random
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx2
import openai

from sb3_llmae.experts.llm.cancellation import Cancellation
from sb3_llmae.experts.llm.context_length import context_overflow
from sb3_llmae.experts.llm.endpoint import Endpoint
from sb3_llmae.experts.llm.errors import AttemptTimedOut, LLMRequestError, ReplyBroken
from sb3_llmae.experts.llm.rate_limit import RateLimiter
from sb3_llmae.experts.llm.redaction import redact
from sb3_llmae.experts.llm.replies import (
    MalformedReplyError,
    ReplyContent,
    parse_completion_body,
    read_bounded,
)
from sb3_llmae.experts.llm.retries import classify_failure, failure_message, parse_retry_after, retry_wait
from sb3_llmae.experts.llm.settings import ChatSettings
from sb3_llmae.experts.llm.tokens import approximate_prompt_tokens
from sb3_llmae.experts.llm.usage import UsageStats

logger = logging.getLogger(__name__)

_Sent = tuple[ReplyContent, Mapping[str, str]]


@dataclass(eq=False)
class ChatTransport:
    """
    Sends chat requests for a :class:`~sb3_llmae.experts.llm.ChatClient` until they succeed, fail for good
    or run out of retries.

    :param model: the model name
    :param endpoint: where requests go (its key is kept out of every message)
    :param settings: timeout, retry and backoff settings
    :param openai_client: the ``openai`` client (its own retries off), whose headers every request sends
    :param http_client: the ``openai`` client's HTTP client (its connection pool), which sends the requests
    :param rate_limiter: the limiter every attempt passes through
    :param cancellation: what :meth:`ChatClient.cancel` moves on
    :param usage: the totals that count the retries
    :param sleep: how to wait between retries; ``None``: a wait that cancellation cuts short
    :param rng: the random generator for backoff jitter
    """

    model: str
    endpoint: Endpoint
    settings: ChatSettings
    openai_client: openai.OpenAI
    http_client: httpx2.Client
    rate_limiter: RateLimiter
    cancellation: Cancellation
    usage: UsageStats
    sleep: Callable[[float], None] | None
    rng: random.Random
    _url: httpx2.URL = field(init=False, repr=False)
    _headers: httpx2.Headers = field(init=False, repr=False)

    def __post_init__(self) -> None:
        # What the openai client would send with every request, worked out once: the HTTP client's headers
        # (accepted encodings), its own (user agent, organisation, project) and the key. Building each
        # request through it instead (URL joining, option copies, header merging) cost more CPU than the
        # rest of the call.
        headers = httpx2.Headers(self.http_client.headers)
        for name, value in {**self.openai_client.default_headers, **self.openai_client.auth_headers}.items():
            if isinstance(value, str):  # not openai.Omit, the mark of a header left out
                headers[name] = value
        self._headers = headers
        # Joined as the openai client joins a path onto its base URL (which ends in "/").
        base_url = self.openai_client.base_url
        self._url = base_url.copy_with(raw_path=base_url.raw_path + b"chat/completions")
        # the base URL's own query (e.g. ?api-key=..., kept out of the shown URL) goes on every request
        query = {str(name): str(value) for name, value in (self.openai_client.default_query or {}).items()}
        if query:
            self._url = self._url.copy_merge_params(query)

    def send(
        self, messages: Sequence[Mapping[str, str]], epoch: int, params: Mapping[str, Any] | None = None
    ) -> tuple[ReplyContent, int]:
        """
        Send the request until it succeeds, fails for good or runs out of retries.

        :param messages: the chat so far
        :param epoch: the cancellation epoch the request started in
        :param params: parameters of this request alone, over the settings'
        :return: the reply and how many retries it took
        :raises LLMRequestError: on a non-retryable failure, a reply that is no chat completion, or after
            all retries
        :raises LLMRequestCancelled: when cancelled meanwhile
        """
        body = self.settings.request_body(self.model, [dict(message) for message in messages], params)
        attempt = 0
        payload = json.dumps(body, separators=(",", ":")).encode("utf-8")
        # The limiter's estimate, counted once: the body is the same on every attempt.
        tokens = approximate_prompt_tokens(body["messages"]) + (self.settings.max_tokens or 0)
        while True:
            try:
                return self._attempt(payload, tokens, epoch), attempt
            except MalformedReplyError as error:
                # A server that answers a chat request with a web page or garbage does so every time.
                raise LLMRequestError(
                    f"LLM request to {self.endpoint.base_url} (model {self.model!r}) got a reply that is not "
                    f"a chat completion: {redact(str(error), self.endpoint.secrets)}",
                    base_url=self.endpoint.base_url,
                    status_code=None,
                    attempts=attempt + 1,
                ) from None
            except (openai.APIStatusError, openai.APIConnectionError, AttemptTimedOut, ReplyBroken) as error:
                overflow_status = error.status_code if isinstance(error, openai.APIStatusError) else None
                overflow = (
                    context_overflow(str(error.message))  # type: ignore[union-attr]
                    if overflow_status in (400, 413)
                    else None
                )
                if overflow is not None:
                    # The same prompt overflows every time: no retry, and no advice about the model name.
                    raise LLMRequestError(
                        f"LLM request to {self.endpoint.base_url} (model {self.model!r}): "
                        f"{overflow.message()}.",
                        base_url=self.endpoint.base_url,
                        status_code=overflow_status,
                        attempts=attempt + 1,
                    ) from None
                failure = classify_failure(error, self.settings.timeout, self.endpoint.secrets)
            if not failure.retryable or attempt == self.settings.max_retries:
                raise LLMRequestError(
                    failure_message(self.model, self.endpoint, failure, attempt + 1),
                    base_url=self.endpoint.base_url,
                    status_code=failure.status_code,
                    attempts=attempt + 1,
                ) from failure.cause
            settings = self.settings
            wait_s = retry_wait(
                attempt, failure.retry_after, settings.backoff_base_s, settings.backoff_max_s, self.rng
            )
            attempt += 1
            self.usage.record_retry()
            logger.warning(
                "LLM request to %s failed (%s); retry %d of %d in %.2f s",
                self.endpoint.base_url,
                failure.reason,
                attempt,
                settings.max_retries,
                wait_s,
            )
            self._wait(wait_s, epoch)

    def _wait(self, seconds: float, epoch: int) -> None:
        """Wait between retries; cancellation cuts the wait short."""
        if self.sleep is None:
            self.cancellation.wait(seconds, epoch)
            return
        self.sleep(seconds)
        self.cancellation.raise_if_cancelled(epoch)

    def _attempt(self, payload: bytes, tokens: int, epoch: int) -> ReplyContent:
        """
        One attempt through the rate limiter, bounded as a whole by the timeout however slowly the server
        trickles its reply, and ended at once by cancellation. The request runs on a daemon thread that
        is left behind when either comes first, so that neither a hung server nor a finished run waits for
        it. The limiter is asked and told in the calling thread, which it knows across retries.

        :param payload: the request's JSON body, encoded
        :param tokens: the tokens the request may spend, for the limiter
        :param epoch: the cancellation epoch the request started in
        :return: the reply's text and token usage
        """
        limiter = self.rate_limiter
        reservation = limiter.acquire(tokens)
        outcome: Future[_Sent] = Future()

        def send() -> None:
            try:
                outcome.set_result(self._send(payload))
            except BaseException as error:  # handed to the waiting thread, which raises it
                outcome.set_exception(error)

        try:
            self.cancellation.raise_if_cancelled(epoch)
            threading.Thread(target=send, name="sb3-llmae-request", daemon=True).start()
            self.cancellation.wait_for(outcome, self.settings.timeout, epoch)
            if not outcome.done():
                raise AttemptTimedOut()
            reply, headers = outcome.result()
        except openai.APIStatusError as error:
            limiter.release(reservation)
            limiter.observe(
                error.response.headers,
                rate_limited=error.status_code == 429,
                retry_after=parse_retry_after(error.response.headers),
            )
            raise
        except BaseException:
            limiter.release(reservation)
            raise
        limiter.release(reservation, reply.prompt_tokens + reply.completion_tokens)
        limiter.observe(headers)
        return reply

    def _send(self, payload: bytes) -> _Sent:
        """
        One request: send it and read the whole reply, at most ``MAX_REPLY_BYTES`` of it.

        Sent through the openai client's own HTTP client, with its headers, and failing with the openai
        client's own errors; but as one prepared request, since the openai client's request building and
        response handling cost several times the CPU of the HTTP exchange itself.

        :param payload: the request's JSON body, encoded
        :return: the reply's text and token usage, and the response headers
        :raises openai.APIStatusError: when the server answers with an error status
        :raises openai.APITimeoutError: when connecting or a read takes longer than the timeout
        :raises openai.APIConnectionError: when the connection fails
        """
        request = httpx2.Request("POST", self._url, headers=self._headers, content=payload)
        try:
            response = self.http_client.send(request, stream=True)
            try:
                body = read_bounded(response.iter_bytes())
            except MalformedReplyError:
                raise
            except httpx2.TimeoutException:
                raise
            except Exception as error:  # the HTTP stack's own errors: closed mid-body, reset, undecodable
                raise ReplyBroken(f"{type(error).__name__}: {error}") from error
            finally:
                response.close()
        except httpx2.TimeoutException as error:
            raise openai.APITimeoutError(request=request) from error
        except httpx2.TransportError as error:
            raise openai.APIConnectionError(request=request) from error
        if not response.is_success:
            # The openai client's own error, with its message and its subclass for the status.
            failed = httpx2.Response(
                response.status_code, headers=response.headers, content=body, request=request
            )
            raise self.openai_client._make_status_error_from_response(failed)
        reply = parse_completion_body(body, response.headers.get("content-type", ""))
        return reply, response.headers
