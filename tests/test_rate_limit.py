"""The client-side rate limiter: even spacing under rpm / tpm, and slowing down when the provider says so."""

import threading
import time
import urllib.error
import urllib.request

import pytest

from sb3_llmae import generate_demonstrations
from sb3_llmae.experts.llm import ChatClient, ChatSettings
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.rate_limit import RateLimiter, parse_reset_duration
from sb3_llmae.testing.oracle import OracleResponder
from sb3_llmae.testing.server import FakeOpenAIServer


class FakeTime:
    """A clock that only moves when someone sleeps."""

    def __init__(self) -> None:
        self.now = 100.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def start_times(limiter: RateLimiter, fake: FakeTime, n: int, tokens: int = 0) -> list[float]:
    times = []
    for _ in range(n):
        reservation = limiter.acquire(tokens)
        times.append(fake.now)
        limiter.release(reservation)
    return times


def test_requests_are_spaced_evenly_under_rpm():
    fake = FakeTime()
    limiter = RateLimiter(rpm=120, clock=fake.clock, sleep=fake.sleep)
    times = start_times(limiter, fake, 5)
    assert [t - times[0] for t in times] == pytest.approx([0.0, 0.5, 1.0, 1.5, 2.0])


def test_tokens_are_spaced_under_tpm_and_corrected_by_actual_usage():
    fake = FakeTime()
    limiter = RateLimiter(tpm=6000, clock=fake.clock, sleep=fake.sleep)  # 100 tokens per second
    times = start_times(limiter, fake, 3, tokens=200)
    assert [t - times[0] for t in times] == pytest.approx([0.0, 2.0, 4.0])
    # A request that used fewer tokens than reserved hands the rest back.
    reservation = limiter.acquire(200)
    limiter.release(reservation, used_tokens=50)
    before = fake.now
    limiter.release(limiter.acquire(0))
    assert fake.now - before == pytest.approx(0.5)


def test_no_limits_means_no_wait():
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    assert start_times(limiter, fake, 10, tokens=10_000) == [100.0] * 10


def test_a_429_pauses_the_other_workers_and_slows_down():
    fake = FakeTime()
    limiter = RateLimiter(rpm=60, clock=fake.clock, sleep=fake.sleep)
    limiter.release(limiter.acquire())
    limiter.observe({}, rate_limited=True, retry_after=5.0)
    assert limiter.speed == pytest.approx(0.7) and limiter.rate_limited == 1
    # The thread that got the 429 waits by its own retry backoff, not by the pause a second time ...
    start = fake.now
    limiter.release(limiter.acquire())
    assert fake.now - start == pytest.approx(1.0)  # only the rpm spacing
    # ... while any other thread waits out the pause.
    waits = []

    def other() -> None:
        waits.append(limiter.acquire().waited_s)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join()
    assert waits[0] == pytest.approx(5.0 - 1.0)
    # Successes bring the speed back, a little each.
    for _ in range(20):
        limiter.observe({})
    assert limiter.speed == 1.0


def test_a_429_without_limits_still_pauses_but_keeps_speed():
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep)
    limiter.observe({}, rate_limited=True, retry_after=None)
    assert limiter.speed == 1.0
    result = []
    thread = threading.Thread(target=lambda: result.append(limiter.acquire().waited_s))
    thread.start()
    thread.join()
    assert result == [pytest.approx(1.0)]  # DEFAULT_PAUSE_S


def test_exhausted_ratelimit_headers_pause_until_the_reset():
    fake = FakeTime()
    limiter = RateLimiter(clock=fake.clock, sleep=fake.sleep, max_pause_s=30)
    limiter.observe({"x-ratelimit-remaining-requests": "3", "x-ratelimit-reset-requests": "9s"})
    assert limiter.acquire().waited_s == 0.0  # room left
    limiter.observe({"X-RateLimit-Remaining-Tokens": "0", "X-RateLimit-Reset-Tokens": "1m30s"})
    assert limiter.acquire().waited_s == pytest.approx(30.0)  # capped by max_pause_s


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("1s", 1.0),
        ("6m0s", 360.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("2.5", 2.5),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_reset_duration(value, seconds):
    assert parse_reset_duration(value) == (pytest.approx(seconds) if seconds is not None else None)


@pytest.mark.parametrize("kwargs", [{"rpm": 0}, {"tpm": -5}])
def test_bad_limits_are_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        ChatSettings(**kwargs)
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        RateLimiter(**kwargs)


def test_32_workers_stay_under_the_servers_limit(monkeypatch):
    """The issue's acceptance run, scaled: rpm and the number of calls up, time down."""
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    rpm, env_id, n_episodes = 1800, "MiniGrid-Empty-5x5-v0", 24  # 5 calls per episode
    with FakeOpenAIServer(latency_s=0.1, rate_limit_rpm=rpm) as server:
        client = ChatClient(
            "oracle", base_url=server.base_url, settings=ChatSettings(rpm=rpm, max_retries=8, timeout=10)
        )
        expert = LLMExpert(mode="step", client=client)
        server.responder = OracleResponder(env_id, range(n_episodes), expert)
        demos = generate_demonstrations(env_id, expert, n_episodes, n_workers=32, progress_bar=False)
        requests = server.requests
    assert demos.stats["success_rate"] == 1.0
    calls = client.usage.calls
    assert calls == 5 * n_episodes
    assert server.rate_limited_count / len(requests) < 0.02
    arrivals = sorted(r.received_at for r in requests)
    ideal_s = (calls - 1) * 60.0 / rpm
    assert arrivals[-1] - arrivals[0] <= 1.15 * ideal_s
    # And not faster than allowed either: the limiter spaced the requests.
    assert arrivals[-1] - arrivals[0] >= 0.9 * ideal_s


def test_server_limits_in_headers_pace_a_client_without_its_own(monkeypatch):
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    with FakeOpenAIServer(rate_limit_rpm=60, rate_limit_burst=2) as server:
        # A burst beyond the server's bucket is refused, with the headers that say why and how long to wait.
        request = urllib.request.Request(
            f"{server.base_url}/chat/completions", data=b'{"messages": []}', method="POST"
        )
        urllib.request.urlopen(request, timeout=5).close()
        urllib.request.urlopen(request, timeout=5).close()
        with pytest.raises(urllib.error.HTTPError) as refused:
            urllib.request.urlopen(request, timeout=5)
        assert refused.value.code == 429
        assert refused.value.headers["x-ratelimit-limit-requests"] == "60"
        assert refused.value.headers["x-ratelimit-remaining-requests"] == "0"
        assert float(refused.value.headers["retry-after-ms"]) > 0
        # A client with no rpm of its own learns the limit from the first reply and paces itself by it.
        time.sleep(2.1)  # the bucket refills
        client = ChatClient("m", base_url=server.base_url, settings=ChatSettings(max_retries=3))
        start = time.monotonic()
        for content in "abcd":
            client.complete([{"role": "user", "content": content}])
        assert server.rate_limited_count == 1  # the urllib burst's, none of the client's
        # 60 rpm: the second goes at once (the limit was unknown when the first went), then one a second.
        assert time.monotonic() - start >= 1.95
