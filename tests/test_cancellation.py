"""Cancellation: waits of the current epoch end at once, later ones run as usual."""

import threading
import time
from concurrent.futures import Future

import pytest

from sb3_llmae.experts.llm.cancellation import Cancellation
from sb3_llmae.experts.llm.errors import LLMRequestCancelled


def cancel_after(cancellation: Cancellation, seconds: float) -> None:
    threading.Timer(seconds, cancellation.cancel).start()


def test_cancel_cuts_a_wait_short_and_raises():
    cancellation = Cancellation("test request")
    epoch = cancellation.epoch
    cancel_after(cancellation, 0.1)
    start = time.monotonic()
    with pytest.raises(LLMRequestCancelled, match="test request cancelled"):
        cancellation.wait(30.0, epoch)
    assert time.monotonic() - start < 5.0


def test_waits_begun_after_a_cancel_run_as_usual():
    cancellation = Cancellation("test request")
    cancellation.cancel()
    start = time.monotonic()
    cancellation.wait(0.05, cancellation.epoch)  # no error: this epoch was not cancelled
    assert time.monotonic() - start >= 0.04


def test_waiting_for_an_outcome_ends_when_it_is_done():
    cancellation = Cancellation("test request")
    outcome: Future[int] = Future()
    threading.Timer(0.05, outcome.set_result, args=(7,)).start()
    start = time.monotonic()
    cancellation.wait_for(outcome, 30.0, cancellation.epoch)
    assert outcome.result() == 7 and time.monotonic() - start < 5.0


def test_sleep_is_cut_short_without_raising():
    cancellation = Cancellation("test request")
    cancel_after(cancellation, 0.1)
    start = time.monotonic()
    cancellation.sleep(30.0)
    assert time.monotonic() - start < 5.0
