"""A client-side limit on requests and tokens per minute, shared by every thread of a client, that slows
down further when the provider says so (429 replies, ``retry-after`` and ``x-ratelimit-*`` headers)."""

from __future__ import annotations

import logging
import math
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass

logger = logging.getLogger(__name__)

# A 429 without a wait in its headers pauses every worker this long.
DEFAULT_PAUSE_S = 1.0
# After a 429 the limiter runs at this fraction of its rate, then recovers by RECOVERY_STEP per success.
SLOWDOWN_FACTOR = 0.7
MIN_SPEED = 0.1
RECOVERY_STEP = 0.02
# A wait for a slot longer than this is announced, with its reason, and none is longer than MAX_WAIT_S:
# whatever a server reports, a run never waits silently for hours.
LONG_WAIT_S = 30.0
MAX_WAIT_S = 300.0
# Reported usage above this many times a request's estimate (plus the slack) cannot be the request's: the
# estimate counts instead. The slack covers short prompts whose estimate is small.
MAX_USAGE_FACTOR = 10
USAGE_SLACK_TOKENS = 10_000
# A provider's own limits below these (per minute) are not limits but a broken header: they are ignored.
MIN_PROVIDER_LIMITS = {"requests": 1.0, "tokens": 100.0}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?)(ms|h|m|s)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_reset_duration(value: str) -> float | None:
    """
    Seconds until a provider's limit resets, from an ``x-ratelimit-reset-*`` header.

    :param value: a Go-style duration as OpenAI sends (``"1s"``, ``"6m0s"``, ``"20ms"``), or seconds
    :return: the seconds (never negative), or ``None`` when the value is not a duration
    """
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        parts = _DURATION_PART.findall(value)
        if not parts or "".join(number + unit for number, unit in parts) != value:
            return None
        seconds = sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)
    return max(seconds, 0.0) if math.isfinite(seconds) else None


@dataclass
class Reservation:
    """
    A request's slot, given by :meth:`RateLimiter.acquire` and handed back to :meth:`RateLimiter.release`.

    :param tokens: the tokens reserved for the request (its estimate)
    :param waited_s: how long the request waited for its slot
    """

    tokens: int
    waited_s: float


class RateLimiter:
    """
    Spaces the requests of all threads of a client evenly so that they stay under ``rpm`` requests and
    ``tpm`` tokens per minute (no bursts: a provider counting over any window sees at most the limit).
    Tokens are reserved from an estimate before a request and corrected by its reported usage after.

    Whatever the limits, the provider's word slows everyone down: a 429 pauses all requests for its
    ``retry-after`` (or ``DEFAULT_PAUSE_S``) and, when limits are known, lowers the rate to
    ``SLOWDOWN_FACTOR`` of what it was (recovering a little with each success); ``x-ratelimit-remaining-*``
    headers that leave no room for the requests in flight pause all requests until the matching reset; and
    the provider's own limits (``x-ratelimit-limit-requests`` / ``-tokens``, per minute as OpenAI sends
    them) cap ``rpm`` / ``tpm``, or stand in for them when they are not set.

    :param rpm: most requests per minute; ``None`` for no limit of its own
    :param tpm: most tokens (prompt + completion) per minute; ``None`` for no limit of its own
    :param max_pause_s: the longest pause a reply may impose (a cap on ``retry-after`` and resets)
    :param max_wait_s: the longest any request waits for its slot, whatever the limits and the replies
        said (a wait beyond ``LONG_WAIT_S`` is logged as a warning with its reason)
    :param clock: monotonic seconds (injectable for tests)
    :param sleep: how to wait (injectable for tests)
    """

    def __init__(
        self,
        rpm: float | None = None,
        tpm: float | None = None,
        max_pause_s: float = 60.0,
        max_wait_s: float = MAX_WAIT_S,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        for name, limit in (("rpm", rpm), ("tpm", tpm)):
            if limit is not None and not limit > 0:
                raise ValueError(f"{name} must be positive or None (no limit), got {limit}")
            if limit is not None and not math.isfinite(limit):
                raise ValueError(f"{name} must be finite or None (no limit), got {limit}")
        for name, seconds in (("max_pause_s", max_pause_s), ("max_wait_s", max_wait_s)):
            if not (seconds >= 0 and math.isfinite(seconds)):
                raise ValueError(f"{name} must be a finite number of seconds >= 0, got {seconds}")
        self.rpm = rpm
        self.tpm = tpm
        # The provider's limits, as its headers tell them.
        self._provider_rpm: float | None = None
        self._provider_tpm: float | None = None
        self.max_pause_s = max_pause_s
        self.max_wait_s = max_wait_s
        # What set the latest pause, for the warning of a long wait.
        self._pause_reason = ""
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        # The earliest moment the next request may start under each limit (the "theoretical arrival time").
        self._next_request_at = -math.inf
        self._next_tokens_at = -math.inf
        self._paused_until = -math.inf
        self._speed = 1.0
        self._in_flight = 0
        # Threads that got a 429 wait by their own retry backoff (which honours retry-after): the pause they
        # caused holds the others back, not them a second time.
        self._pause_exempt: set[int] = set()
        self.rate_limited = 0

    @property
    def speed(self) -> float:
        """The fraction of ``rpm`` / ``tpm`` the limiter runs at now (below 1 after 429s)."""
        with self._lock:
            return self._speed

    def acquire(self, tokens: int = 0) -> Reservation:
        """
        Wait for a slot for one request.

        :param tokens: the tokens the request is expected to use (prompt + most completion tokens)
        :return: the reservation, to hand back to :meth:`release` when the request ends
        """
        with self._lock:
            now = self._clock()
            thread = threading.get_ident()
            paused_until = -math.inf if thread in self._pause_exempt else self._paused_until
            self._pause_exempt.discard(thread)
            rpm, tpm = self._limits()
            start = max(now, self._next_request_at, self._next_tokens_at, paused_until)
            if start - now > LONG_WAIT_S:
                start = self._announce_long_wait(now, start, paused_until, rpm, tpm)
            if rpm is not None:
                self._next_request_at = start + 60.0 / (rpm * self._speed)
            if tpm is not None:
                self._next_tokens_at = start + tokens * 60.0 / (tpm * self._speed)
            self._in_flight += 1
        wait_s = start - now
        if wait_s > 0:
            self._sleep(wait_s)
        return Reservation(tokens=tokens, waited_s=max(wait_s, 0.0))

    def release(self, reservation: Reservation, used_tokens: int | None = None) -> None:
        """
        Hand a slot back when its request has ended.

        :param reservation: what :meth:`acquire` returned
        :param used_tokens: the tokens the request used, to correct the estimate; ``None`` when unknown
        """
        with self._lock:
            self._in_flight -= 1
            tpm = self._limits()[1]
            if tpm is not None and used_tokens is not None:
                used_tokens = self._plausible_usage(reservation, used_tokens)
                self._next_tokens_at += (used_tokens - reservation.tokens) * 60.0 / (tpm * self._speed)

    def _announce_long_wait(
        self, now: float, start: float, paused_until: float, rpm: float | None, tpm: float | None
    ) -> float:
        """
        Log why the next request would wait ``start - now`` seconds, and cap the wait at ``max_wait_s``
        (pulling every schedule in, so that the requests after it are not held either). Called locked.

        :return: the capped start
        """
        wait_s = start - now
        if start == paused_until:
            reason = self._pause_reason or "the provider asked for a pause"
        elif start == self._next_tokens_at:
            reason = f"the tokens per minute limit ({tpm:g}) and the tokens the last requests reported"
        else:
            reason = f"the requests per minute limit ({rpm:g})"
        capped = min(start, now + self.max_wait_s)
        logger.warning(
            "The next LLM request would wait %.0f s for %s; waiting %.0f s instead%s.",
            wait_s,
            reason,
            capped - now,
            "" if capped == start else f" (at most {self.max_wait_s:g} s)",
        )
        self._next_request_at = min(self._next_request_at, capped)
        self._next_tokens_at = min(self._next_tokens_at, capped)
        self._paused_until = min(self._paused_until, capped)
        return capped

    def _plausible_usage(self, reservation: Reservation, used_tokens: int) -> int:
        """
        :return: ``used_tokens`` if a request estimated at ``reservation.tokens`` can have used them, else
            the estimate (with a warning): a reply's usage may be garbage, the pacing must not be
        """
        bound = MAX_USAGE_FACTOR * reservation.tokens + USAGE_SLACK_TOKENS
        if 0 <= used_tokens <= bound:
            return used_tokens
        logger.warning(
            "The server reported a usage of %d tokens for a request estimated at %d: not plausible, "
            "the rate limiter counts the estimate instead.",
            used_tokens,
            reservation.tokens,
        )
        return reservation.tokens

    def observe(
        self, headers: Mapping[str, str], rate_limited: bool = False, retry_after: float | None = None
    ) -> None:
        """
        Learn from a reply: a 429 pauses everyone and slows down, exhausted ``x-ratelimit-remaining-*``
        headers pause everyone until their reset, and a success lets the speed recover.

        :param headers: the reply's headers (any case)
        :param rate_limited: whether the reply was a 429
        :param retry_after: the wait the reply asked for (parsed ``retry-after`` / ``retry-after-ms``)
        """
        lowered = {name.lower(): value for name, value in headers.items()}
        with self._lock:
            now = self._clock()
            if rate_limited:
                self.rate_limited += 1
                pause = min(retry_after if retry_after is not None else DEFAULT_PAUSE_S, self.max_pause_s)
                self._pause(now + pause, "a 429 reply's retry-after")
                self._pause_exempt.add(threading.get_ident())
                if self._limits() != (None, None):
                    self._speed = max(self._speed * SLOWDOWN_FACTOR, MIN_SPEED)
                logger.info(
                    "Rate limited: pausing all requests %.2f s, speed now %.0f%%", pause, 100 * self._speed
                )
            else:
                self._speed = min(self._speed + RECOVERY_STEP, 1.0)
            for kind in ("requests", "tokens"):
                limit = _number(lowered.get(f"x-ratelimit-limit-{kind}"))
                if limit is not None and limit < MIN_PROVIDER_LIMITS[kind]:
                    logger.warning(
                        "Ignoring the server's x-ratelimit-limit-%s: %g per minute is not a usable limit.",
                        kind,
                        limit,
                    )
                elif limit is not None:
                    if kind == "requests":
                        self._provider_rpm = limit
                    else:
                        self._provider_tpm = limit
                remaining = _number(lowered.get(f"x-ratelimit-remaining-{kind}"))
                reset = lowered.get(f"x-ratelimit-reset-{kind}")
                reset_s = parse_reset_duration(reset) if reset is not None else None
                if remaining is None or reset_s is None:
                    continue
                # Requests already sent will use up what remains; tokens: keep one request's worth free.
                needed = self._in_flight if kind == "requests" else 1
                if remaining < needed:
                    self._pause(
                        now + min(reset_s, self.max_pause_s), f"x-ratelimit-remaining-{kind}: {remaining:g}"
                    )

    def _pause(self, until: float, reason: str) -> None:
        """Hold every request back until ``until`` (called locked); ``reason`` explains a long wait."""
        if until > self._paused_until:
            self._paused_until = until
            self._pause_reason = reason

    def _limits(self) -> tuple[float | None, float | None]:
        """:return: the requests and tokens per minute in force: the lower of ours and the provider's"""
        return _lower(self.rpm, self._provider_rpm), _lower(self.tpm, self._provider_tpm)

    def describe(self) -> dict[str, float | None]:
        """:return: the limits, for run metadata"""
        return {"rpm": self.rpm, "tpm": self.tpm}

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.rpm}, tpm={self.tpm})"


def _lower(first: float | None, second: float | None) -> float | None:
    if first is None:
        return second
    return first if second is None else min(first, second)


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    return number if math.isfinite(number) else None
