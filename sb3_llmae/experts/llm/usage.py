"""What chat requests returned and spent: one reply, and the thread-safe totals over a client's requests."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any


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
