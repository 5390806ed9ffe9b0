"""Cancellation of requests under way, from any thread (e.g. on Ctrl-C), and waits that it cuts short."""

from __future__ import annotations

import threading
from concurrent.futures import Future
from typing import Any

from sb3_llmae.experts.llm.errors import LLMRequestCancelled


class Cancellation:
    """
    An epoch that :meth:`cancel` moves on: requests and waits begun in an earlier epoch end at once, those
    begun later run as usual.

    :param what: what is cancelled, for the message of :class:`LLMRequestCancelled`
    """

    def __init__(self, what: str) -> None:
        self.what = what
        self._epoch = 0
        self._lock = threading.Lock()
        # One event per wait under way: a finished request wakes its own waiter only, and cancel() all of
        # them (one condition shared by every wait would wake each waiter at every reply, O(workers²)).
        self._waiting: set[threading.Event] = set()

    @property
    def epoch(self) -> int:
        """The current epoch: note it when a request starts, and check it with :meth:`raise_if_cancelled`."""
        return self._epoch

    def cancel(self) -> None:
        """End every request and wait of the current epoch."""
        with self._lock:
            self._epoch += 1
            waiting = list(self._waiting)
        for event in waiting:
            event.set()

    def raise_if_cancelled(self, epoch: int) -> None:
        """
        :param epoch: the epoch a request started in
        :raises LLMRequestCancelled: if :meth:`cancel` was called since
        """
        if self._epoch != epoch:
            raise LLMRequestCancelled(f"{self.what} cancelled")

    def wait(self, seconds: float, epoch: int) -> None:
        """
        Wait ``seconds``, or less when :meth:`cancel` is called.

        :param seconds: how long to wait
        :param epoch: the epoch the waiting request started in
        :raises LLMRequestCancelled: if :meth:`cancel` was called (before or during the wait)
        """
        self._wait(threading.Event(), seconds, epoch)
        self.raise_if_cancelled(epoch)

    def sleep(self, seconds: float) -> None:
        """
        A sleep that :meth:`cancel` cuts short, without raising (for the rate limiter's pauses).

        :param seconds: how long to sleep
        """
        self._wait(threading.Event(), seconds, self._epoch)

    def wait_for(self, outcome: Future[Any], seconds: float, epoch: int) -> None:
        """
        Wait until ``outcome`` is done, ``seconds`` have passed or :meth:`cancel` is called.

        :param outcome: the future to wait for
        :param seconds: the longest wait
        :param epoch: the epoch the waiting request started in
        :raises LLMRequestCancelled: if :meth:`cancel` was called
        """
        event = threading.Event()
        outcome.add_done_callback(lambda _: event.set())
        self._wait(event, seconds, epoch)
        self.raise_if_cancelled(epoch)

    def _wait(self, event: threading.Event, seconds: float, epoch: int) -> None:
        """Wait until ``event`` is set, ``seconds`` have passed or the epoch has moved on from ``epoch``."""
        with self._lock:
            if self._epoch != epoch:
                return
            self._waiting.add(event)
        try:
            event.wait(seconds)
        finally:
            with self._lock:
                self._waiting.discard(event)
