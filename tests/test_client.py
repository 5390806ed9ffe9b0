"""ChatClient against a local fake OpenAI server: replies, retries, errors, cache, a secret API key."""

import email.utils
import json
import logging
import multiprocessing
import threading
import time
import traceback
from typing import Any

import pytest

from sb3_llmae.experts.llm import ChatClient, ChatSettings, LLMEndpointError, LLMRequestError
from sb3_llmae.experts.llm.cache import CachedReply, ResponseCache, request_key
from sb3_llmae.experts.llm.retries import parse_retry_after
from sb3_llmae.testing.server import FakeOpenAIServer, FakeReply

MODEL = "fake-model"
SECRET = "sk-test-SECRET-123"


def user(content: str) -> list[dict[str, str]]:
    return [{"role": "system", "content": "You play MiniGrid."}, {"role": "user", "content": content}]


def make_client(server: FakeOpenAIServer, sleeps: list[float] | None = None, **kwargs: Any) -> ChatClient:
    """A client of the fake server that records its retry waits in ``sleeps`` instead of sleeping."""
    cache, api_key = kwargs.pop("cache", None), kwargs.pop("api_key", None)
    settings = ChatSettings(**{"timeout": 2.0, "max_retries": 2, **kwargs})
    recorded = sleeps if sleeps is not None else []
    return ChatClient(
        MODEL,
        base_url=server.base_url,
        api_key=api_key,
        settings=settings,
        cache=cache,
        sleep=recorded.append,
    )


def counting_responder() -> Any:
    """A responder whose replies differ on every call, so a test can tell a cached reply from a fresh one."""
    lock = threading.Lock()
    calls = [0]

    def respond(request: dict[str, Any]) -> str:
        with lock:
            calls[0] += 1
            return f"reply {calls[0]} to {request['messages'][-1]['content']}"

    return respond


def test_reply_usage_and_request_body(fake_openai_server):
    fake_openai_server.enqueue(FakeReply("forward", prompt_tokens=11, completion_tokens=7))
    client = make_client(fake_openai_server, temperature=0.5, max_tokens=32, extra_params={"top_p": 0.9})
    result = client.complete(user("where is the goal?"))
    assert result.text == "forward"
    assert (result.prompt_tokens, result.completion_tokens) == (11, 7)
    assert not result.cached and result.retries == 0 and result.latency_s > 0
    second = client.complete(user("and now?"))
    assert second.text == "echo: and now?"

    (request, _) = fake_openai_server.requests
    assert request.path == "/v1/chat/completions"
    assert request.body["model"] == MODEL
    assert request.body["messages"] == user("where is the goal?")
    assert request.body["temperature"] == 0.5
    assert request.body["max_tokens"] == 32
    assert request.body["top_p"] == 0.9
    usage = client.usage.as_dict()
    assert usage["calls"] == 2 and usage["requests"] == 2
    assert usage["prompt_tokens"] == 11 + second.prompt_tokens
    assert usage["completion_tokens"] == 7 + second.completion_tokens
    assert usage["retries"] == usage["failures"] == usage["cache_hits"] == 0
    assert usage["total_latency_s"] == pytest.approx(result.latency_s + second.latency_s)


def test_rate_limit_waits_as_long_as_retry_after_says(fake_openai_server):
    fake_openai_server.enqueue(FakeReply.rate_limited(retry_after="1"), "done")
    client = ChatClient(
        MODEL, base_url=fake_openai_server.base_url, settings=ChatSettings(timeout=2.0, max_retries=2)
    )
    start = time.perf_counter()
    result = client.complete(user("go"))
    assert time.perf_counter() - start >= 0.95
    assert result.text == "done" and result.retries == 1
    assert client.usage.as_dict()["retries"] == 1
    assert fake_openai_server.request_count == 2


@pytest.mark.parametrize(
    ("headers", "expected_wait"),
    [
        ({"Retry-After": "2"}, 2.0),
        ({"retry-after-ms": "250", "Retry-After": "9"}, 0.25),
        ({"Retry-After": "1000"}, 5.0),  # capped by backoff_max_s
    ],
)
def test_retry_after_header_forms(fake_openai_server, headers, expected_wait):
    fake_openai_server.enqueue(FakeReply(status=429, headers=headers), "done")
    sleeps: list[float] = []
    client = make_client(fake_openai_server, sleeps, backoff_max_s=5.0)
    assert client.complete(user("go")).text == "done"
    assert sleeps == [pytest.approx(expected_wait)]


def test_retry_after_http_date(fake_openai_server):
    in_three_seconds = email.utils.formatdate(time.time() + 3, usegmt=True)
    fake_openai_server.enqueue(FakeReply.rate_limited(retry_after=in_three_seconds), "done")
    sleeps: list[float] = []
    assert make_client(fake_openai_server, sleeps).complete(user("go")).text == "done"
    # HTTP dates have a resolution of one second.
    assert len(sleeps) == 1 and 1.5 < sleeps[0] <= 3.0


def test_parse_retry_after():
    now = 1_700_000_000.0
    assert parse_retry_after({"Retry-After": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "20"}) == pytest.approx(0.02)
    assert parse_retry_after({"Retry-After": "-3"}) == 0.0
    assert parse_retry_after({"Retry-After": email.utils.formatdate(now + 4, usegmt=True)}, now=now) == 4.0
    assert parse_retry_after({"Retry-After": email.utils.formatdate(now - 4, usegmt=True)}, now=now) == 0.0
    assert parse_retry_after({"Retry-After": "soon"}) is None
    assert parse_retry_after({}) is None


def test_server_error_then_success(fake_openai_server):
    fake_openai_server.enqueue(FakeReply.server_error(500), "done")
    sleeps: list[float] = []
    result = make_client(fake_openai_server, sleeps, backoff_base_s=0.2).complete(user("go"))
    assert result.text == "done" and result.retries == 1
    assert len(sleeps) == 1 and 0.1 <= sleeps[0] <= 0.2


def test_persistent_server_error_fails_naming_the_endpoint(fake_openai_server):
    fake_openai_server.responder = lambda request: FakeReply.server_error(503)
    sleeps: list[float] = []
    client = make_client(fake_openai_server, sleeps, max_retries=4, backoff_base_s=1.0, backoff_max_s=3.0)
    with pytest.raises(LLMRequestError) as error_info:
        client.complete(user("go"))
    error = error_info.value
    assert error.status_code == 503 and error.attempts == 5
    assert fake_openai_server.base_url in str(error)
    assert "503" in str(error) and "5 attempt(s)" in str(error)
    assert fake_openai_server.request_count == 5
    # Exponential backoff with jitter in [0.5, 1] of the step, capped at backoff_max_s.
    for wait, step in zip(sleeps, (1.0, 2.0, 3.0, 3.0), strict=True):
        assert 0.5 * step <= wait <= step
    usage = client.usage.as_dict()
    assert (usage["retries"], usage["failures"], usage["calls"]) == (4, 1, 0)


def test_slow_reply_times_out_is_retried_then_fails(fake_openai_server):
    fake_openai_server.enqueue(FakeReply.slow(3.0), FakeReply.slow(3.0))
    client = make_client(fake_openai_server, timeout=0.3, max_retries=1)
    start = time.perf_counter()
    with pytest.raises(LLMRequestError, match="timeout") as error_info:
        client.complete(user("go"))
    assert time.perf_counter() - start < 2.0
    assert error_info.value.status_code is None and error_info.value.attempts == 2
    assert fake_openai_server.base_url in str(error_info.value)
    assert fake_openai_server.request_count == 2


def test_slow_reply_then_success(fake_openai_server):
    fake_openai_server.enqueue(FakeReply.slow(3.0), "in time")
    result = make_client(fake_openai_server, timeout=0.3).complete(user("go"))
    assert result.text == "in time" and result.retries == 1


def test_unreachable_server_is_retried_then_fails():
    with FakeOpenAIServer() as server:
        base_url = server.base_url
    sleeps: list[float] = []
    client = ChatClient(
        MODEL, base_url=base_url, settings=ChatSettings(timeout=1.0, max_retries=2), sleep=sleeps.append
    )
    with pytest.raises(LLMRequestError, match="connection failed") as error_info:
        client.complete(user("go"))
    assert base_url in str(error_info.value) and "Is a server running at" in str(error_info.value)
    assert len(sleeps) == 2


@pytest.mark.parametrize(("status", "advice"), [(400, "rejected"), (401, "OPENAI_API_KEY"), (404, "/v1")])
def test_client_errors_are_not_retried(fake_openai_server, status, advice):
    fake_openai_server.enqueue(FakeReply(status=status, text="no"))
    client = make_client(fake_openai_server)
    with pytest.raises(LLMRequestError, match=advice) as error_info:
        client.complete(user("go"))
    assert error_info.value.status_code == status and error_info.value.attempts == 1
    assert fake_openai_server.request_count == 1
    assert client.usage.as_dict()["failures"] == 1


def test_no_endpoint_configured_is_a_clear_error(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMEndpointError) as error_info:
        ChatClient(MODEL)
    message = str(error_info.value)
    for expected in (
        "OPENAI_BASE_URL",
        "OPENAI_API_KEY",
        "http://localhost:11434/v1",
        "http://localhost:8000/v1",
    ):
        assert expected in message


def test_endpoint_from_environment(fake_openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai_server.base_url)
    client = ChatClient(MODEL, settings=ChatSettings(max_retries=0))
    assert client.describe()["base_url"] == fake_openai_server.base_url
    assert client.complete(user("hi")).text == "echo: hi"
    # A local server needs no key: the client sends a placeholder.
    assert fake_openai_server.requests[0].headers["authorization"] == "Bearer not-needed"


def test_api_key_alone_selects_openai(monkeypatch):
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.setenv("OPENAI_API_KEY", SECRET)
    client = ChatClient(MODEL)  # constructed only: no request leaves the machine
    assert client.describe()["base_url"] == "https://api.openai.com/v1"


@pytest.mark.parametrize(
    "kwargs",
    [{"temperature": -1.0}, {"max_retries": -1}, {"timeout": 0.0}, {"extra_params": {"temperature": 1.0}}],
)
def test_invalid_settings_are_rejected(kwargs):
    with pytest.raises(ValueError):
        ChatSettings(**kwargs)


def test_cache_answers_repeated_requests(fake_openai_server, tmp_path):
    client = make_client(fake_openai_server, cache=tmp_path / "cache.sqlite")
    first = client.complete(user("go"))
    second = client.complete(user("go"))
    assert fake_openai_server.request_count == 1
    assert not first.cached and second.cached and second.retries == 0
    assert (second.text, second.prompt_tokens, second.completion_tokens) == (
        first.text,
        first.prompt_tokens,
        first.completion_tokens,
    )
    usage = client.usage.as_dict()
    assert (usage["calls"], usage["cache_hits"], usage["requests"]) == (1, 1, 2)
    # Cache hits cost no tokens.
    assert usage["prompt_tokens"] == first.prompt_tokens


def test_sample_index_separates_samples_only_above_temperature_zero(fake_openai_server, tmp_path):
    fake_openai_server.responder = counting_responder()
    cache = ResponseCache(tmp_path / "cache.sqlite")
    stochastic = make_client(fake_openai_server, cache=cache, temperature=0.7)
    first, second = (stochastic.complete(user("go"), sample_index=index) for index in (0, 1))
    assert first.text != second.text
    assert stochastic.complete(user("go"), sample_index=0).text == first.text
    assert fake_openai_server.request_count == 2

    greedy = make_client(fake_openai_server, cache=cache, temperature=0.0)
    texts = {greedy.complete(user("go"), sample_index=index).text for index in (0, 1, 5)}
    assert len(texts) == 1
    assert fake_openai_server.request_count == 3
    assert len(cache) == 3


def test_request_key_is_canonical():
    messages = user("go")
    params = {"temperature": 0.0, "max_tokens": 16}
    key = request_key(MODEL, messages, params)
    assert key == request_key(
        MODEL, [dict(reversed(m.items())) for m in messages], dict(reversed(params.items()))
    )
    assert key == request_key(MODEL, messages, params, sample_index=3)
    assert key != request_key("other-model", messages, params)
    assert key != request_key(MODEL, user("stay"), params)
    assert key != request_key(MODEL, messages, {**params, "max_tokens": 17})
    assert key != request_key(MODEL, messages, {**params, "top_p": 0.5})
    hot = {**params, "temperature": 1.0}
    assert request_key(MODEL, messages, hot, 0) != request_key(MODEL, messages, hot, 1)


def test_cache_is_consistent_across_threads(fake_openai_server, tmp_path):
    path = tmp_path / "cache.sqlite"
    client = make_client(fake_openai_server, cache=path)
    prompts = [f"prompt {index}" for index in range(10)]
    results: dict[int, list[str]] = {}

    def worker(worker_index: int) -> None:
        order = prompts[worker_index:] + prompts[:worker_index]
        results[worker_index] = [client.complete(user(prompt)).text for prompt in order * 2]

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(results) == list(range(8))
    for texts in results.values():
        assert sorted(texts) == sorted(f"echo: {prompt}" for prompt in prompts * 2)
    usage = client.usage.as_dict()
    assert usage["requests"] == 8 * 20 and usage["failures"] == 0
    assert usage["calls"] == fake_openai_server.request_count
    assert len(client.cache) == 10
    client.close()

    # A re-run of the same requests, with a fresh client and cache object, asks the server nothing.
    served = fake_openai_server.request_count
    rerun = make_client(fake_openai_server, cache=ResponseCache(path))
    assert all(rerun.complete(user(prompt)).cached for prompt in prompts)
    assert fake_openai_server.request_count == served


def test_cache_persists_across_instances(fake_openai_server, tmp_path):
    path = tmp_path / "nested" / "cache.sqlite"
    with make_client(fake_openai_server, cache=path) as client:
        original = client.complete(user("go"))
    with ResponseCache(path) as reopened:
        assert len(reopened) == 1
        result = make_client(fake_openai_server, cache=reopened).complete(user("go"))
    assert result.cached and result.text == original.text
    assert fake_openai_server.request_count == 1


def _write_entries(cache: ResponseCache, worker_index: int) -> None:
    for entry in range(50):
        cache.put(f"{worker_index}-{entry}", CachedReply(f"text {worker_index}-{entry}", 1, 2))


def test_cache_is_shared_by_processes(tmp_path):
    path = tmp_path / "cache.sqlite"
    # Opened before the fork: each child must open its own connection rather than use the inherited one.
    cache = ResponseCache(path)
    context = multiprocessing.get_context("fork")
    workers = [context.Process(target=_write_entries, args=(cache, index)) for index in range(3)]
    for worker in workers:
        worker.start()
    _write_entries(cache, 99)
    for worker in workers:
        worker.join(timeout=30)
        assert worker.exitcode == 0
    assert len(cache) == 4 * 50
    assert cache.get("2-49") == CachedReply("text 2-49", 1, 2)
    cache.close()


def test_api_key_is_never_written(fake_openai_server, tmp_path, caplog):
    caplog.set_level(logging.DEBUG)
    path = tmp_path / "cache.sqlite"
    client = make_client(fake_openai_server, api_key=SECRET, cache=path, temperature=0.5, max_retries=1)
    fake_openai_server.enqueue(FakeReply.rate_limited("0"), "first")
    client.complete(user("go"))
    client.complete(user("go"))  # cache hit
    client.complete(user("go"), sample_index=1)
    # A server that echoes the key in its error message must not get it into ours.
    fake_openai_server.enqueue(FakeReply(status=401, text=f"Incorrect API key provided: {SECRET}"))
    with pytest.raises(LLMRequestError) as error_info:
        client.complete(user("stop"))
    fake_openai_server.enqueue(FakeReply.server_error(), FakeReply.server_error())
    with pytest.raises(LLMRequestError) as second_error_info:
        client.complete(user("again"))
    client.close()

    # The key did travel, where it belongs: in the Authorization header.
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in fake_openai_server.requests)
    secret = SECRET.encode()
    cache_files = list(tmp_path.glob("cache.sqlite*"))
    assert cache_files
    for cache_file in cache_files:
        assert secret not in cache_file.read_bytes()
    assert SECRET not in caplog.text
    assert "retry 1 of 1" in caplog.text  # the logs were captured
    assert SECRET not in json.dumps(client.describe())
    assert SECRET not in repr(client)
    for error in (error_info.value, second_error_info.value):
        assert SECRET not in "".join(traceback.format_exception(error))
        assert fake_openai_server.base_url in str(error)
    # Clients with other keys share the cache: the key is not part of the cache key.
    other = make_client(fake_openai_server, api_key="sk-other", cache=path, temperature=0.5)
    assert other.complete(user("go")).cached
