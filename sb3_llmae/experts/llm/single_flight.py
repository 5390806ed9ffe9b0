"""Single-flight: concurrent calls for the same key run once, and every caller gets that one outcome."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class _Flight(Generic[T]):
    """One call in progress: its outcome, once known, and the event its waiters block on."""

    def __init__(self) -> None:
        self.done = threading.Event()
        self.value: T | None = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """
    Runs a function at most once at a time per key: a caller that finds a call for its key in
    progress waits for it and shares its result, or its exception. Keys are forgotten as soon as their
    call ends, so a later call runs again (a cache in front of it keeps what is worth keeping).

    Safe to share between threads.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[str, _Flight[T]] = {}

    def run(self, key: str, function: Callable[[], T]) -> tuple[T, bool]:
        """
        Call ``function`` unless a call for ``key`` is already in progress, in which case wait for that one.

        :param key: what identifies the call (e.g. a request's cache key)
        :param function: the call to make
        :return: the result, and whether it was shared from another caller's call (``False`` for the
            caller that made it)
        :raises BaseException: whatever the call raised, in the caller that made it and in every waiter
        """
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value, True  # type: ignore[return-value]
        try:
            flight.value = function()
        except BaseException as error:
            flight.error = error
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return flight.value, False

    def __len__(self) -> int:
        """:return: how many calls are in progress"""
        with self._lock:
            return len(self._flights)
