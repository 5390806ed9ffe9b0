"""Cancellation of requests under way, from any thread (e.g. on Ctrl-C), and waits that it cuts short."""

from __future__ import annotations

import threading
from collections.abc import Callable
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
        self._condition = threading.Condition()

    @property
    def epoch(self) -> int:
        """The current epoch: note it when a request starts, and check it with :meth:`raise_if_cancelled`."""
        return self._epoch

    def cancel(self) -> None:
        """End every request and wait of the current epoch."""
        with self._condition:
            self._epoch += 1
            self._condition.notify_all()

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
        self._wait_until(lambda: False, seconds, epoch)
        self.raise_if_cancelled(epoch)

    def sleep(self, seconds: float) -> None:
        """
        A sleep that :meth:`cancel` cuts short, without raising (for the rate limiter's pauses).

        :param seconds: how long to sleep
        """
        self._wait_until(lambda: False, seconds, self._epoch)

    def wait_for(self, outcome: Future[Any], seconds: float, epoch: int) -> None:
        """
        Wait until ``outcome`` is done, ``seconds`` have passed or :meth:`cancel` is called.

        :param outcome: the future to wait for
        :param seconds: the longest wait
        :param epoch: the epoch the waiting request started in
        :raises LLMRequestCancelled: if :meth:`cancel` was called
        """

        def wake(_: Future[Any]) -> None:
            with self._condition:
                self._condition.notify_all()

        outcome.add_done_callback(wake)
        self._wait_until(outcome.done, seconds, epoch)
        self.raise_if_cancelled(epoch)

    def _wait_until(self, done: Callable[[], bool], seconds: float, epoch: int) -> None:
        with self._condition:
            self._condition.wait_for(lambda: done() or self._epoch != epoch, timeout=seconds)
