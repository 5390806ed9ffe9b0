"""A chat client for any OpenAI-compatible endpoint, with a response cache, retries and usage accounting."""

from __future__ import annotations

import dataclasses
import logging
import random
import sqlite3
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

import openai

from sb3_llmae.experts.llm.cache import CachedReply, ResponseCache, request_key
from sb3_llmae.experts.llm.cancellation import Cancellation
from sb3_llmae.experts.llm.endpoint import resolve_endpoint
from sb3_llmae.experts.llm.errors import LLMRequestError
from sb3_llmae.experts.llm.rate_limit import RateLimiter
from sb3_llmae.experts.llm.redaction import scrub
from sb3_llmae.experts.llm.settings import ChatSettings
from sb3_llmae.experts.llm.single_flight import SingleFlight
from sb3_llmae.experts.llm.transport import ChatTransport
from sb3_llmae.experts.llm.usage import ChatResult, UsageStats

logger = logging.getLogger(__name__)


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

        endpoint = resolve_endpoint(base_url, api_key)
        self.model = model
        self.base_url = endpoint.base_url
        self.settings = settings
        self.usage = UsageStats()
        self._cancellation = Cancellation(f"LLM request to {endpoint.base_url}")
        # One connection pool for the chat requests (sent by ChatTransport) and the openai client's own.
        self._http = openai.DefaultHttpxClient(timeout=settings.timeout)
        # The retry loop is ours (in ChatTransport) so that retries are counted, logged and testable.
        self._endpoint = endpoint
        self._openai = openai.OpenAI(
            api_key=endpoint.client_api_key,
            base_url=endpoint.url,
            default_query=dict(endpoint.query) or None,
            timeout=settings.timeout,
            max_retries=0,
            http_client=self._http,
        )
        self.rate_limiter = (
            rate_limiter
            if rate_limiter is not None
            else RateLimiter(
                rpm=settings.rpm,
                tpm=settings.tpm,
                max_pause_s=settings.backoff_max_s,
                sleep=sleep if sleep is not None else self._cancellation.sleep,
            )
        )
        self._transport = ChatTransport(
            model,
            endpoint,
            settings,
            self._openai,
            self._http,
            self.rate_limiter,
            self._cancellation,
            self.usage,
            sleep=sleep,
            rng=rng if rng is not None else random.Random(),
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
        return self.settings.sampling_params

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
        epoch = self._cancellation.epoch
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
            reply, retries = self._transport.send(messages, epoch, params)
        except LLMRequestError:
            self.usage.record_failure()
            raise
        latency_s = time.perf_counter() - start
        # A reply that quotes the key (a proxy's echo, a prompt-injected model) must not reach the cache,
        # the transcripts or the terminal.
        text = self.scrub(reply.text)
        prompt_tokens, completion_tokens = reply.prompt_tokens, reply.completion_tokens
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
        self._cancellation.cancel()

    def scrub(self, text: str) -> str:
        """
        :param text: text that came from the endpoint (a reply, an error message)
        :return: it without the API key or the base URL's credentials (``<redacted>`` instead)
        """
        return scrub(text, self._endpoint.secrets)

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
