"""A chat client for any OpenAI-compatible endpoint, with retries and usage accounting."""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import logging
import math
import os
import random
import sqlite3
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType, TracebackType
from typing import Any

import openai
from openai.types.chat import ChatCompletion

from sb3_llmae.experts.llm.cache import CachedReply, ResponseCache, request_key
from sb3_llmae.experts.llm.context_length import context_overflow
from sb3_llmae.experts.llm.rate_limit import RateLimiter
from sb3_llmae.experts.llm.replies import (
    MalformedReplyError,
    ReplyContent,
    parse_completion_body,
    read_bounded,
)
from sb3_llmae.experts.llm.single_flight import SingleFlight
from sb3_llmae.experts.llm.tokens import approximate_prompt_tokens

logger = logging.getLogger(__name__)

BASE_URL_ENV = "OPENAI_BASE_URL"
API_KEY_ENV = "OPENAI_API_KEY"
OPENAI_BASE_URL = "https://api.openai.com/v1"
# The openai client insists on a key; local servers (Ollama, vLLM, llama.cpp) ignore it.
PLACEHOLDER_API_KEY = "not-needed"
# Request timeouts, rate limits and server-side failures are transient; other 4xx are the caller's mistake.
RETRYABLE_STATUS_CODES = frozenset({408, 429})
# The header with which the openai client's own `with_raw_response` asks for the reply's headers too.
RAW_RESPONSE_HEADER = "X-Stainless-Raw-Response"
# Parameters that ChatClient sets itself, so extra_params may not override them.
RESERVED_PARAMS = frozenset({"model", "messages", "temperature", "max_tokens", "stream"})

# Where a reply in the prompts' format is over, sent as `stop` by default: the end-of-turn markers a model
# served without its chat template writes as text (ChatML, which llama.cpp falls back to), a blank line,
# and the start of a second reasoning. OpenAI accepts at most 4.
DEFAULT_STOP_SEQUENCES: tuple[str, ...] = ("<|im_end|>", "<|im_start|>", "\n\n", "\nReasoning:")
MAX_STOP_SEQUENCES = 4

NO_ENDPOINT_MESSAGE = (
    f"No LLM endpoint is configured. Set {BASE_URL_ENV} to an OpenAI-compatible server "
    f"(and {API_KEY_ENV} if it needs a key), set {API_KEY_ENV} alone to use {OPENAI_BASE_URL}, "
    "or pass base_url explicitly. Examples:\n"
    f"  Ollama:    {BASE_URL_ENV}=http://localhost:11434/v1 --model llama3.1\n"
    f"  vLLM:      {BASE_URL_ENV}=http://localhost:8000/v1 --model <served model name>\n"
    f"  llama.cpp: {BASE_URL_ENV}=http://localhost:8080/v1 --model <any name>\n"
    f"  OpenAI:    {API_KEY_ENV}=<your key> --model gpt-4o-mini"
)


class LLMEndpointError(RuntimeError):
    """The LLM endpoint is not configured, cannot be reached or refused a request."""


class LLMRequestCancelled(RuntimeError):
    """A chat request was abandoned because :meth:`ChatClient.cancel` was called (e.g. on Ctrl-C)."""


class _AttemptTimedOut(Exception):
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


@dataclass(frozen=True)
class ChatResult:
    """
    The reply to one chat request.

    :param text: the assistant's message ("" when the server sent no text)
    :param prompt_tokens: prompt tokens reported by the server (0 when it reports no usage)
    :param completion_tokens: completion tokens reported by the server (0 when it reports no usage)
    :param latency_s: wall time of the request in seconds, retries and waits included
    :param cached: whether the reply came from the response cache rather than the server
    :param retries: how many times the request was retried
    :param finish_reason: why the reply ended (``"stop"``; ``"length"``: cut by ``max_tokens`` or the
        server's context), ``None`` when the server does not say
    :param logprobs: the reply's log-probabilities as the server sent them, ``None`` when there are none
    """

    text: str
    prompt_tokens: int
    completion_tokens: int
    latency_s: float
    cached: bool
    retries: int
    finish_reason: str | None = None
    logprobs: Any = None


@dataclass(eq=False)
class UsageStats:
    """
    Thread-safe totals over the requests of a ``ChatClient``.

    :param calls: server requests that succeeded
    :param cache_hits: requests answered from the response cache
    :param retries: retried attempts, over successful and failed requests
    :param failures: requests that failed after all retries (or with a non-retryable error)
    :param prompt_tokens: prompt tokens spent on the server (cache hits cost none)
    :param completion_tokens: completion tokens spent on the server (cache hits cost none)
    :param total_latency_s: summed wall time of the successful server requests
    """

    calls: int = 0
    cache_hits: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_latency_s: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def record_call(self, prompt_tokens: int, completion_tokens: int, latency_s: float) -> None:
        """
        Count one successful server request.

        :param prompt_tokens: prompt tokens reported by the server
        :param completion_tokens: completion tokens reported by the server
        :param latency_s: wall time of the request, retries included
        """
        with self._lock:
            self.calls += 1
            self.prompt_tokens += prompt_tokens
            self.completion_tokens += completion_tokens
            self.total_latency_s += latency_s

    def record_cache_hit(self) -> None:
        """Count one request answered from the cache."""
        with self._lock:
            self.cache_hits += 1

    def record_retry(self) -> None:
        """Count one retried attempt."""
        with self._lock:
            self.retries += 1

    def record_failure(self) -> None:
        """Count one request that failed for good."""
        with self._lock:
            self.failures += 1

    def as_dict(self) -> dict[str, int | float]:
        """
        A consistent snapshot of the totals.

        :return: the counters by name, plus the total number of requests
        """
        with self._lock:
            return {
                "requests": self.calls + self.cache_hits + self.failures,
                "calls": self.calls,
                "cache_hits": self.cache_hits,
                "retries": self.retries,
                "failures": self.failures,
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
                "total_latency_s": self.total_latency_s,
            }


@dataclass(frozen=True)
class ChatSettings:
    """
    How a :class:`ChatClient` asks: sampling, timeouts and retries. The one place their defaults live
    (``LLMExpert`` and the ``generate`` command read them from here).

    :param temperature: sampling temperature; 0 for (near-)greedy replies that the cache re-uses
    :param max_tokens: most tokens per reply; ``None`` leaves it to the server
    :param stop: sequences that end a reply (sent as ``stop``; at most 4); ``None`` or ``()`` sends none
    :param timeout: seconds one attempt may take in all (connecting, waiting and reading the whole reply)
        before it is abandoned (and retried)
    :param max_retries: how many times a failed request is retried (429 / 5xx / timeouts)
    :param extra_params: further request parameters (e.g. ``top_p``, ``seed``, ``stop``), sent in the
        request body and part of the cache key
    :param backoff_base_s: the first backoff wait, doubled on each retry
    :param backoff_max_s: the longest wait between retries, also a cap on ``Retry-After``
    :param rpm: most requests per minute, over all threads of the client; ``None`` for no limit of its own
        (429s and ``x-ratelimit-*`` headers slow it down either way)
    :param tpm: most tokens (prompt + completion) per minute, over all threads; ``None`` for no limit
    """

    temperature: float = 0.0
    max_tokens: int | None = 256
    stop: tuple[str, ...] | None = DEFAULT_STOP_SEQUENCES
    timeout: float = 60.0
    max_retries: int = 5
    extra_params: Mapping[str, Any] = field(default_factory=dict)
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    rpm: float | None = None
    tpm: float | None = None

    def __post_init__(self) -> None:
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {self.temperature}")
        if self.max_tokens is not None and self.max_tokens <= 0:
            raise ValueError(f"max_tokens must be positive or None, got {self.max_tokens}")
        if self.stop is not None:
            stop = (self.stop,) if isinstance(self.stop, str) else tuple(self.stop)
            if len(stop) > MAX_STOP_SEQUENCES or not all(isinstance(s, str) and s for s in stop):
                raise ValueError(
                    f"stop must be at most {MAX_STOP_SEQUENCES} non-empty strings (OpenAI's limit), "
                    f"got {self.stop!r}"
                )
            object.__setattr__(self, "stop", stop or None)
        if self.timeout <= 0:
            raise ValueError(f"timeout must be positive, got {self.timeout}")
        if self.max_retries < 0:
            raise ValueError(f"max_retries must be >= 0, got {self.max_retries}")
        for name, limit in (("rpm", self.rpm), ("tpm", self.tpm)):
            if limit is not None and not limit > 0:
                raise ValueError(f"{name} must be positive, or None for no limit; got {limit}")
        reserved = sorted(RESERVED_PARAMS.intersection(self.extra_params))
        if reserved:
            raise ValueError(f"extra_params may not set {reserved}: they are ChatSettings' own fields")
        # A private copy, so that a caller's later change to its dict cannot alter the cache key.
        object.__setattr__(self, "extra_params", MappingProxyType(dict(self.extra_params)))


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


class ChatClient:
    """
    Chat completions from an OpenAI-compatible endpoint (OpenAI, OpenRouter, vLLM, Ollama, llama.cpp).

    Retries rate limits (429, honouring ``Retry-After``), server errors (5xx), timeouts and connection
    errors with capped, jittered exponential backoff; fails at once on other errors (400, 401, 404, ...).
    The API key is handed to the ``openai`` client only: it is never logged, cached or described.

    :param model: the model name as the endpoint knows it
    :param base_url: the endpoint, e.g. ``http://localhost:11434/v1``; defaults to ``$OPENAI_BASE_URL``,
        then to OpenAI's own when ``$OPENAI_API_KEY`` is set
    :param api_key: the endpoint's key; defaults to ``$OPENAI_API_KEY``; local servers need none
    :param settings: sampling, timeout and retry settings (:class:`ChatSettings`' defaults when ``None``)
    :param cache: a ``ResponseCache``, or the path of its SQLite file, or ``None`` for no cache
    :param sleep: how to wait between retries (injectable so tests need not wait); by default a wait that
        :meth:`cancel` cuts short
    :param rng: the random generator for backoff jitter
    :param rate_limiter: the limiter all requests pass through; by default one of its own with the
        settings' ``rpm`` and ``tpm`` (pass one to share it between clients of the same account)
    """

    def __init__(
        self,
        model: str,
        base_url: str | None = None,
        api_key: str | None = None,
        settings: ChatSettings | None = None,
        cache: ResponseCache | str | Path | None = None,
        sleep: Callable[[float], None] | None = None,
        rng: random.Random | None = None,
        rate_limiter: RateLimiter | None = None,
    ) -> None:
        if not model:
            raise ValueError("model must name the model to query, e.g. 'llama3.1'")
        settings = settings if settings is not None else ChatSettings()

        # Empty variables count as unset, as in a shell's `OPENAI_API_KEY= cmd`.
        if base_url:
            self._base_url_origin = "base_url (--base-url)"
        elif os.environ.get(BASE_URL_ENV):
            self._base_url_origin = f"${BASE_URL_ENV}"
        else:
            self._base_url_origin = f"the default, used when only ${API_KEY_ENV} is set"
        base_url = base_url or os.environ.get(BASE_URL_ENV) or None
        api_key = api_key or os.environ.get(API_KEY_ENV) or None
        if base_url is None and api_key is None:
            raise LLMEndpointError(NO_ENDPOINT_MESSAGE)

        self.model = model
        self.base_url = (base_url or OPENAI_BASE_URL).rstrip("/")
        self.settings = settings
        self.usage = UsageStats()
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        # cancel() moves the epoch on; requests and waits begun in an earlier epoch end at once.
        self._cancel_epoch = 0
        self._cancel_condition = threading.Condition()
        # The retry loop is ours so that retries are counted, logged and testable.
        self._openai = openai.OpenAI(
            api_key=api_key or PLACEHOLDER_API_KEY,
            base_url=self.base_url,
            timeout=settings.timeout,
            max_retries=0,
        )
        self.rate_limiter = (
            rate_limiter
            if rate_limiter is not None
            else RateLimiter(
                rpm=settings.rpm,
                tpm=settings.tpm,
                max_pause_s=settings.backoff_max_s,
                sleep=sleep if sleep is not None else self._interruptible_sleep,
            )
        )
        # Concurrent requests with the same cache key make one call (see complete()).
        self._flights: SingleFlight[ChatResult] = SingleFlight()
        self._owns_cache = isinstance(cache, (str, Path))
        self.cache = ResponseCache(cache) if isinstance(cache, (str, Path)) else cache

    @property
    def openai_client(self) -> openai.OpenAI:
        """The underlying ``openai`` client (its own retries off), for other endpoints, e.g. batches."""
        return self._openai

    @property
    def sampling_params(self) -> dict[str, Any]:
        """The parameters that shape a reply besides the messages (part of the cache key)."""
        settings = self.settings
        # `stop` only when set, so that the cache keys of requests without one stay as they were.
        stop = {"stop": list(settings.stop)} if settings.stop else {}
        return {
            "temperature": settings.temperature,
            "max_tokens": settings.max_tokens,
            **stop,
            **settings.extra_params,
        }

    def complete(
        self,
        messages: Sequence[Mapping[str, str]],
        sample_index: int = 0,
        params: Mapping[str, Any] | None = None,
    ) -> ChatResult:
        """
        Ask the model for the next assistant message, from the cache when it holds the answer. With a
        cache, concurrent requests for the same key make one call: the others wait and share its reply
        (counted as cache hits), or its error.

        :param messages: the chat so far, as ``{"role": ..., "content": ...}`` dicts
        :param sample_index: which sample of this prompt is wanted; at temperature > 0 each index is a
            separate cache entry (so repeated episodes may differ), at temperature 0 it is ignored
        :param params: request parameters of this request alone, over the settings' (e.g. ``max_tokens``,
            ``logprobs``, ``response_format``); part of the cache key
        :return: the reply, with its token usage and latency
        :raises LLMRequestError: when the request fails with a non-retryable error or after all retries
        :raises LLMRequestCancelled: when :meth:`cancel` is called while the request is under way
        """
        if sample_index < 0:
            raise ValueError(f"sample_index must be >= 0, got {sample_index}")
        params = dict(params or {})
        if self.cache is None:
            return self._complete_once(messages, sample_index, params)
        start = time.perf_counter()
        called = False

        def call_once() -> ChatResult:
            nonlocal called
            called = True
            return self._complete_once(messages, sample_index, params)

        key = request_key(self.model, messages, {**self.sampling_params, **params}, sample_index)
        try:
            result, shared = self._flights.run(key, call_once)
        except LLMRequestError:
            if not called:  # the caller that made the call counted its failure already
                self.usage.record_failure()
            raise
        if not shared:
            return result
        self.usage.record_cache_hit()
        return dataclasses.replace(result, latency_s=time.perf_counter() - start, cached=True, retries=0)

    def _complete_once(
        self, messages: Sequence[Mapping[str, str]], sample_index: int, params: Mapping[str, Any]
    ) -> ChatResult:
        """
        :meth:`complete` without the sharing of concurrent identical requests.

        :param messages: the chat so far
        :param sample_index: which sample of this prompt is wanted
        :param params: this request's own parameters
        :return: the reply
        """
        epoch = self._cancel_epoch
        start = time.perf_counter()
        key = None
        if self.cache is not None:
            key = request_key(self.model, messages, {**self.sampling_params, **params}, sample_index)
            hit = self.cache.get(key)
            if hit is not None:
                self.usage.record_cache_hit()
                logger.debug("LLM cache hit %s", key[:12])
                return ChatResult(
                    text=hit.text,
                    prompt_tokens=hit.prompt_tokens,
                    completion_tokens=hit.completion_tokens,
                    latency_s=time.perf_counter() - start,
                    cached=True,
                    retries=0,
                    finish_reason=hit.finish_reason,
                    logprobs=hit.logprobs,
                )
        try:
            reply, retries = self._create_with_retries(messages, epoch, params)
        except LLMRequestError:
            self.usage.record_failure()
            raise
        latency_s = time.perf_counter() - start
        text, prompt_tokens, completion_tokens = reply.text, reply.prompt_tokens, reply.completion_tokens
        self.usage.record_call(prompt_tokens, completion_tokens, latency_s)
        logger.debug(
            "LLM reply from %s in %.2fs (%d prompt + %d completion tokens, %d retries)",
            self.base_url,
            latency_s,
            prompt_tokens,
            completion_tokens,
            retries,
        )
        if self.cache is not None and key is not None:
            try:
                # Another process may have stored a reply first: its reply is the one a replay gets, so it
                # is the one this run uses too.
                text = self.cache.put(
                    key,
                    CachedReply(text, prompt_tokens, completion_tokens, reply.finish_reason, reply.logprobs),
                    self.model,
                ).text
            except sqlite3.Error as error:
                # The reply is paid for and good; losing its cache entry only costs a re-run.
                logger.warning("Could not store an LLM reply in %s: %s", self.cache.path, error)
        return ChatResult(
            text=text,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
            latency_s=latency_s,
            cached=False,
            retries=retries,
            finish_reason=reply.finish_reason,
            logprobs=reply.logprobs,
        )

    def cancel(self) -> None:
        """
        Abandon every request under way, from any thread: each raises :class:`LLMRequestCancelled` at once,
        whether it waits for a reply or between retries. Requests started later are sent as usual.
        """
        with self._cancel_condition:
            self._cancel_epoch += 1
            self._cancel_condition.notify_all()

    def _check_cancelled(self, epoch: int) -> None:
        if self._cancel_epoch != epoch:
            raise LLMRequestCancelled(f"LLM request to {self.base_url} cancelled")

    def _wait(self, seconds: float, epoch: int) -> None:
        """Wait between retries; :meth:`cancel` cuts the wait short."""
        if self._sleep is not None:
            self._sleep(seconds)
        else:
            with self._cancel_condition:
                self._cancel_condition.wait_for(lambda: self._cancel_epoch != epoch, timeout=seconds)
        self._check_cancelled(epoch)

    def _send(self, request: dict[str, Any]) -> tuple[ReplyContent, Mapping[str, str]]:
        """
        One attempt: send the request and read the whole reply, at most ``MAX_REPLY_BYTES`` of it.

        :param request: the keyword arguments of ``chat.completions.create``
        :return: the reply's text and token usage, and the response headers
        """
        body = {name: value for name, value in request.items() if name != "extra_body"}
        body.update(request.get("extra_body", {}))
        # `post`, the client's documented way to reach any endpoint, not `chat.completions.create`: create()
        # walks every message through a type-directed transform that costs more CPU than the rest of the call
        # and caps the requests a process keeps in flight (benchmarks/llm_generation.py). The raw-response
        # header asks for the unread, streamed response, so that the reply is read with a bound.
        response: Any = self._openai.post(
            "/chat/completions",
            body=body,
            cast_to=ChatCompletion,
            options={"headers": {RAW_RESPONSE_HEADER: "stream"}},
        )
        try:
            reply = parse_completion_body(
                read_bounded(response.iter_bytes()), response.headers.get("content-type", "")
            )
            return reply, dict(response.headers)
        finally:
            response.close()

    def _attempt(self, request: dict[str, Any], epoch: int) -> ReplyContent:
        """
        One attempt through the rate limiter, bounded as a whole by the timeout however slowly the server
        trickles its reply, and ended at once by :meth:`cancel`. The request runs on a daemon thread that
        is left behind when either comes first, so that neither a hung server nor a finished run waits for
        it. The limiter is asked and told in the calling thread, which it knows across retries.

        :param request: the keyword arguments of ``chat.completions.create``
        :param epoch: the cancellation epoch the request started in
        :return: the reply's text and token usage
        """
        limiter = self.rate_limiter
        reservation = limiter.acquire(
            approximate_prompt_tokens(request["messages"]) + (self.settings.max_tokens or 0)
        )
        outcome: Future[tuple[ReplyContent, Mapping[str, str]]] = Future()

        def send() -> None:
            try:
                outcome.set_result(self._send(request))
            except BaseException as error:  # handed to the waiting thread, which raises it
                outcome.set_exception(error)

        def wake(_: Future[tuple[ReplyContent, Mapping[str, str]]]) -> None:
            with self._cancel_condition:
                self._cancel_condition.notify_all()

        try:
            self._check_cancelled(epoch)
            outcome.add_done_callback(wake)
            threading.Thread(target=send, name="sb3-llmae-request", daemon=True).start()
            with self._cancel_condition:
                self._cancel_condition.wait_for(
                    lambda: outcome.done() or self._cancel_epoch != epoch, timeout=self.settings.timeout
                )
            self._check_cancelled(epoch)
            if not outcome.done():
                raise _AttemptTimedOut()
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

    def _interruptible_sleep(self, seconds: float) -> None:
        """Sleep that :meth:`cancel` cuts short (the rate limiter's waits, so that Ctrl-C ends them)."""
        with self._cancel_condition:
            epoch = self._cancel_epoch
            self._cancel_condition.wait_for(lambda: self._cancel_epoch != epoch, timeout=seconds)

    def _create_with_retries(
        self, messages: Sequence[Mapping[str, str]], epoch: int, params: Mapping[str, Any] | None = None
    ) -> tuple[ReplyContent, int]:
        """
        Send the request until it succeeds, fails for good or runs out of retries.

        :param messages: the chat so far
        :param epoch: the cancellation epoch the request started in
        :param params: this request's own parameters, over the settings'
        :return: the reply and how many retries it took
        """
        request: dict[str, Any] = {
            "model": self.model,
            "messages": [dict(message) for message in messages],
            "temperature": self.settings.temperature,
        }
        if self.settings.max_tokens is not None:
            request["max_tokens"] = self.settings.max_tokens
        if self.settings.stop:
            request["stop"] = list(self.settings.stop)
        if self.settings.extra_params or params:
            request["extra_body"] = {**self.settings.extra_params, **(params or {})}
        attempt = 0
        while True:
            try:
                return self._attempt(request, epoch), attempt
            except MalformedReplyError as error:
                # A server that answers a chat request with a web page or garbage does so every time.
                raise LLMRequestError(
                    f"LLM request to {self.base_url} (model {self.model!r}) got a reply that is not a chat "
                    f"completion: {self._redact(str(error))}",
                    base_url=self.base_url,
                    status_code=None,
                    attempts=attempt + 1,
                ) from None
            except openai.APIStatusError as error:
                overflow = context_overflow(str(error.message)) if error.status_code in (400, 413) else None
                if overflow is not None:
                    # The same prompt overflows every time: no retry, and no advice about the model name.
                    raise LLMRequestError(
                        f"LLM request to {self.base_url} (model {self.model!r}): {overflow.message()}.",
                        base_url=self.base_url,
                        status_code=error.status_code,
                        attempts=attempt + 1,
                    ) from None
                last_error: Exception = error
                status_code: int | None = error.status_code
                retryable = error.status_code in RETRYABLE_STATUS_CODES or error.status_code >= 500
                retry_after = parse_retry_after(error.response.headers)
                reason = f"HTTP {error.status_code}: {self._redact(error.message)}"
            except (openai.APITimeoutError, _AttemptTimedOut) as error:
                last_error, status_code, retryable, retry_after = error, None, True, None
                reason = f"no complete reply within the {self.settings.timeout:g} s timeout"
            except openai.APIConnectionError as error:
                last_error, status_code, retryable, retry_after = error, None, True, None
                underlying = error.__cause__ if error.__cause__ is not None else error
                reason = f"connection failed ({type(underlying).__name__})"
            if not retryable or attempt == self.settings.max_retries:
                # A status error carries the server's reply, which might echo the key: leave it unchained.
                cause = last_error if isinstance(last_error, openai.APIConnectionError) else None
                raise LLMRequestError(
                    self._failure_message(status_code, reason, attempt + 1),
                    base_url=self.base_url,
                    status_code=status_code,
                    attempts=attempt + 1,
                ) from cause
            wait_s = self._retry_wait(attempt, retry_after)
            attempt += 1
            self.usage.record_retry()
            logger.warning(
                "LLM request to %s failed (%s); retry %d of %d in %.2f s",
                self.base_url,
                reason,
                attempt,
                self.settings.max_retries,
                wait_s,
            )
            self._wait(wait_s, epoch)

    def _retry_wait(self, attempt: int, retry_after: float | None) -> float:
        """
        How long to wait before the next attempt.

        :param attempt: the index of the attempt that just failed (0 for the first)
        :param retry_after: the wait the server asked for, if any
        :return: seconds to wait: the server's wish, else jittered exponential backoff; capped either way
        """
        if retry_after is not None:
            return min(retry_after, self.settings.backoff_max_s)
        backoff = self.settings.backoff_base_s * 2.0 ** min(attempt, 32)
        # Jitter spreads the retries of concurrent workers so they do not hit the server in lockstep.
        return min(backoff, self.settings.backoff_max_s) * self._rng.uniform(0.5, 1.0)

    def _failure_message(self, status_code: int | None, reason: str, attempts: int) -> str:
        """
        What went wrong and what to do, naming the endpoint and never the key.

        :param status_code: the HTTP status of the last attempt, if any
        :param reason: what the last attempt ran into
        :param attempts: how many requests were sent
        :return: the error message
        """
        if status_code in (401, 403):
            advice = f"Check {API_KEY_ENV}: the endpoint refused the key"
        elif status_code == 404:
            advice = (
                f"Check that model {self.model!r} is served there and that the base URL ends in /v1 "
                "(e.g. http://localhost:11434/v1)"
            )
        elif status_code == 429:
            advice = "The endpoint is rate limiting: run fewer parallel workers or raise max_retries"
        elif status_code is not None and status_code >= 500:
            advice = "The server failed: check its logs, or retry later"
        elif status_code is not None:
            advice = "The endpoint rejected the request: check the model name and sampling parameters"
        elif reason.startswith("no complete reply"):
            advice = "The server is overloaded or the model is slow: raise the timeout or run fewer workers"
        else:
            advice = (
                f"Is a server running at {self.base_url}? (the address comes from {self._base_url_origin})"
            )
        return (
            f"LLM request to {self.base_url} (model {self.model!r}) failed after {attempts} attempt(s): "
            f"{reason}. {advice}"
        )

    def _redact(self, text: str, max_chars: int = 300) -> str:
        """
        Make server-supplied text safe to show: shortened, and without the API key should it echo it.

        :param text: the text, e.g. a server's error message
        :param max_chars: the most characters kept
        :return: the redacted text
        """
        api_key = self._openai.api_key
        if api_key and api_key != PLACEHOLDER_API_KEY:
            text = text.replace(api_key, "<redacted>")
        return text if len(text) <= max_chars else text[:max_chars] + "..."

    def describe(self) -> dict[str, Any]:
        """
        The client's settings, for run metadata; without the API key.

        :return: model, endpoint, sampling and retry settings, and the cache file
        """
        return {
            "model": self.model,
            "base_url": self.base_url,
            "temperature": self.settings.temperature,
            "max_tokens": self.settings.max_tokens,
            "timeout": self.settings.timeout,
            "max_retries": self.settings.max_retries,
            **self.rate_limiter.describe(),
            "extra_params": dict(self.settings.extra_params),
            "cache": str(self.cache.path) if self.cache is not None else None,
        }

    def close(self) -> None:
        """Close the HTTP connections, and the cache when this client opened it."""
        self._openai.close()
        if self._owns_cache and self.cache is not None:
            self.cache.close()

    def __enter__(self) -> ChatClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"ChatClient(model={self.model!r}, base_url={self.base_url!r}, settings={self.settings!r})"
