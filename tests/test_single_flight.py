"""Single-flight: concurrent identical requests make one server call and share its reply or its error."""

import threading

import pytest

from sb3_llmae.experts.llm import ChatClient, ChatSettings, LLMRequestError
from sb3_llmae.experts.llm.single_flight import SingleFlight
from sb3_llmae.testing.server import FakeReply

N_THREADS = 24
PROMPT = [{"role": "user", "content": "Which way to the goal?"}]


def run_together(function, n_threads=N_THREADS):
    """Start ``n_threads`` threads on ``function`` at the same moment; return their results or errors."""
    barrier = threading.Barrier(n_threads)
    outcomes: list[object] = [None] * n_threads

    def work(index: int) -> None:
        barrier.wait()
        try:
            outcomes[index] = function()
        except Exception as error:
            outcomes[index] = error

    threads = [threading.Thread(target=work, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return outcomes


def make_client(server, tmp_path, **settings):
    return ChatClient(
        "fake-model",
        base_url=server.base_url,
        cache=tmp_path / "cache.sqlite",
        settings=ChatSettings(timeout=5, **settings),
    )


def test_many_threads_on_one_prompt_make_one_call(fake_openai_server, tmp_path):
    fake_openai_server.latency_s = 0.3  # long enough for every thread to arrive while the call runs
    client = make_client(fake_openai_server, tmp_path)
    results = run_together(lambda: client.complete(PROMPT))
    assert fake_openai_server.request_count == 1
    assert {result.text for result in results} == {"echo: Which way to the goal?"}
    assert sum(not result.cached for result in results) == 1
    usage = client.usage.as_dict()
    assert (usage["calls"], usage["cache_hits"], usage["requests"]) == (1, N_THREADS - 1, N_THREADS)
    # The reply was stored: a later request is a plain cache hit.
    assert client.complete(PROMPT).cached and fake_openai_server.request_count == 1


def test_waiters_see_the_callers_error(fake_openai_server, tmp_path):
    fake_openai_server.latency_s = 0.3
    fake_openai_server.enqueue(FakeReply(text="bad request", status=400))
    client = make_client(fake_openai_server, tmp_path, max_retries=0)
    outcomes = run_together(lambda: client.complete(PROMPT))
    assert fake_openai_server.request_count == 1
    assert all(isinstance(outcome, LLMRequestError) and outcome.status_code == 400 for outcome in outcomes)
    assert client.usage.as_dict()["failures"] == N_THREADS
    # Errors are not remembered: the next request asks again.
    assert client.complete(PROMPT).text == "echo: Which way to the goal?"
    assert fake_openai_server.request_count == 2


def test_different_prompts_are_not_merged(fake_openai_server, tmp_path):
    fake_openai_server.latency_s = 0.1
    client = make_client(fake_openai_server, tmp_path)
    counter = iter(range(N_THREADS))
    lock = threading.Lock()

    def ask():
        with lock:
            index = next(counter)
        return client.complete([{"role": "user", "content": f"prompt {index}"}])

    results = run_together(ask)
    assert fake_openai_server.request_count == N_THREADS
    assert len({result.text for result in results}) == N_THREADS


def test_without_cache_every_request_is_sent(fake_openai_server):
    fake_openai_server.latency_s = 0.2
    client = ChatClient("fake-model", base_url=fake_openai_server.base_url)
    run_together(lambda: client.complete(PROMPT), n_threads=4)
    assert fake_openai_server.request_count == 4


def test_single_flight_forgets_a_key_once_its_call_ends():
    flights: SingleFlight[int] = SingleFlight()
    assert flights.run("k", lambda: 1) == (1, False)
    assert flights.run("k", lambda: 2) == (2, False)
    with pytest.raises(KeyError):
        flights.run("k", lambda: {}["missing"])
    assert len(flights) == 0
