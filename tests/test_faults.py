"""Fault injection against the LLM client: a local server (127.0.0.1) that hangs, trickles, sends HTML,
invalid, deeply nested or huge replies, or rate-limits every request. Whatever it does, the client gives a
reply, or one clean error naming the endpoint, in bounded time; cancel() ends any wait at once."""

import signal
import subprocess
import sys
import threading
import time

import pytest

from sb3_llmae import load_demonstrations
from sb3_llmae.cli import main
from sb3_llmae.experts import LLMExpert
from sb3_llmae.experts.llm import (
    ChatClient,
    ChatSettings,
    LLMRequestCancelled,
    LLMRequestError,
    ResponseCache,
)
from sb3_llmae.experts.llm.cache import CachedReply, request_key
from sb3_llmae.experts.llm.parsing import parse_action, parse_action_list
from sb3_llmae.experts.llm.replies import MAX_REPLY_BYTES, MAX_REPLY_CHARS
from sb3_llmae.testing import FakeReply
from sb3_llmae.testing.oracle import OracleResponder

MODEL = "fake-model"
USER = [{"role": "user", "content": "What now?"}]


def client_for(server, timeout: float = 1.0, max_retries: int = 0, **kwargs) -> ChatClient:
    settings = ChatSettings(timeout=timeout, max_retries=max_retries, backoff_base_s=0.01, backoff_max_s=0.05)
    return ChatClient(MODEL, base_url=server.base_url, settings=settings, **kwargs)


def test_hanging_server_is_bounded_by_the_timeout(fake_openai_server):
    fake_openai_server.enqueue(FakeReply.hang())
    start = time.monotonic()
    with client_for(fake_openai_server) as client, pytest.raises(LLMRequestError) as error_info:
        client.complete(USER)
    assert time.monotonic() - start < 3
    message = str(error_info.value)
    assert "no complete reply within the 1 s timeout" in message and fake_openai_server.base_url in message
    assert "raise the timeout" in message


def test_trickling_server_is_bounded_by_the_timeout_of_the_whole_request(fake_openai_server):
    # Every read gets a byte within the timeout; the whole reply would take minutes.
    fake_openai_server.enqueue(FakeReply.trickle("Action: 2", bytes_per_s=20))
    start = time.monotonic()
    with client_for(fake_openai_server) as client, pytest.raises(LLMRequestError, match="timeout"):
        client.complete(USER)
    assert time.monotonic() - start < 3


def test_trickling_within_the_timeout_is_a_reply(fake_openai_server):
    fake_openai_server.enqueue(
        FakeReply(body=b'{"choices": [{"message": {"content": "go"}}]}', bytes_per_s=200)
    )
    with client_for(fake_openai_server, timeout=5) as client:
        assert client.complete(USER).text == "go"


@pytest.mark.parametrize(
    ("reply", "expected"),
    [
        (FakeReply.html(), "HTML page"),
        (FakeReply.invalid_json(), "not valid JSON"),
        (FakeReply.nested_json(), "nested too deeply"),
        (FakeReply(body=b'{"object": "list", "data": []}'), "no 'choices'"),
        (FakeReply(body=b'{"choices": [{"message": {"content": {"a": 1}}}]}'), "not text"),
        (FakeReply(body=b'{"choices": ["text"]}'), "no 'message'"),
        (FakeReply(body=b"x" * (MAX_REPLY_BYTES + 1)), "larger than"),
    ],
    ids=[
        "html",
        "invalid-json",
        "nested-json",
        "not-a-completion",
        "content-not-text",
        "no-message",
        "too-big",
    ],
)
def test_a_reply_that_is_not_a_chat_completion_is_one_clean_error(fake_openai_server, reply, expected):
    fake_openai_server.enqueue(reply)
    with (
        client_for(fake_openai_server, max_retries=3) as client,
        pytest.raises(LLMRequestError) as error_info,
    ):
        client.complete(USER)
    message = str(error_info.value)
    assert expected in message and fake_openai_server.base_url in message and MODEL in message
    # the same answer would come again: not retried
    assert fake_openai_server.request_count == 1
    assert client.usage.failures == 1


def test_html_error_page_is_a_status_error_not_a_traceback(fake_openai_server):
    fake_openai_server.enqueue(FakeReply.html(status=502))
    with client_for(fake_openai_server) as client, pytest.raises(LLMRequestError, match="HTTP 502"):
        client.complete(USER)


def test_huge_reply_is_bounded_in_cache_and_result_and_parsed(fake_openai_server, tmp_path):
    fake_openai_server.enqueue(FakeReply.huge(1_000_000, answer="Action: 2"))
    cache = ResponseCache(tmp_path / "cache.sqlite")
    with client_for(fake_openai_server, timeout=20, cache=cache) as client:
        result = client.complete(USER)
        assert len(result.text) <= MAX_REPLY_CHARS
        assert result.text.startswith("I look around") and result.text.endswith("Action: 2")
        assert "characters cut" in result.text
        start = time.perf_counter()
        assert parse_action(result.text) == 2
        assert time.perf_counter() - start < 1.0
        # replayed from the cache: the same bounded text
        assert client.complete(USER).text == result.text
    assert (tmp_path / "cache.sqlite").stat().st_size < 200_000


@pytest.mark.parametrize("n_chars", [220_000, 1_000_000])
def test_parsing_is_linear_in_the_reply(n_chars):
    filler = "The door is not open, so I can't go forward; I turn left, then go forward. " * (n_chars // 75)
    start = time.perf_counter()
    assert parse_action(filler + "Action: 1") == 1
    assert parse_action(filler) is not None
    assert parse_action_list(filler + "\nActions: [forward, left]") == [2, 0]
    assert parse_action('{"a": "' + "{" * n_chars) is None
    assert parse_action("[" * n_chars) is None
    assert time.perf_counter() - start < 5.0


def test_rate_limit_storm_gives_up_with_advice(fake_openai_server):
    fake_openai_server.responder = lambda request: FakeReply.rate_limited(retry_after="0")
    with (
        client_for(fake_openai_server, max_retries=4) as client,
        pytest.raises(LLMRequestError) as error_info,
    ):
        client.complete(USER)
    assert "HTTP 429" in str(error_info.value) and "rate limiting" in str(error_info.value)
    assert fake_openai_server.request_count == 5


def _cancel_after(client: ChatClient, seconds: float) -> threading.Thread:
    thread = threading.Thread(target=lambda: (time.sleep(seconds), client.cancel()))
    thread.start()
    return thread


def test_cancel_ends_a_request_in_flight(fake_openai_server):
    fake_openai_server.responder = lambda request: FakeReply.hang()
    with client_for(fake_openai_server, timeout=60) as client:
        canceller = _cancel_after(client, 0.5)
        start = time.monotonic()
        with pytest.raises(LLMRequestCancelled):
            client.complete(USER)
        assert time.monotonic() - start < 2
        canceller.join()


def test_cancel_ends_a_backoff_wait(fake_openai_server):
    fake_openai_server.responder = lambda request: FakeReply.rate_limited(retry_after="30")
    settings = ChatSettings(timeout=5, max_retries=5, backoff_max_s=60)
    with ChatClient(MODEL, base_url=fake_openai_server.base_url, settings=settings) as client:
        canceller = _cancel_after(client, 0.5)
        start = time.monotonic()
        with pytest.raises(LLMRequestCancelled):
            client.complete(USER)
        assert time.monotonic() - start < 2
        canceller.join()
        # requests after a cancel are sent as usual
        fake_openai_server.responder = lambda request: "Action: 2"
        assert client.complete(USER).text == "Action: 2"


def test_first_stored_reply_wins_in_a_shared_cache(fake_openai_server, tmp_path):
    path = tmp_path / "cache.sqlite"
    other_process = ResponseCache(path)

    def answer_while_another_process_stores_its_reply(request):
        # Another run asked the same question and stored its answer while this request was in flight.
        key = request_key(MODEL, USER, client.sampling_params)
        other_process.put(key, CachedReply("Action: 1", 3, 2), MODEL)
        return "Action: 2"

    fake_openai_server.responder = answer_while_another_process_stores_its_reply
    with client_for(fake_openai_server, cache=path) as client:
        assert client.complete(USER).text == "Action: 1"
    other_process.close()
    with client_for(fake_openai_server, cache=path) as replay:
        assert replay.complete(USER).text == "Action: 1"
        assert replay.usage.cache_hits == 1


@pytest.mark.parametrize("kind", ["directory", "corrupt"])
def test_unusable_cache_file_is_named(tmp_path, kind):
    path = tmp_path / "cache.sqlite"
    if kind == "directory":
        path.mkdir()
    else:
        path.write_bytes(b"this is not an SQLite database" * 100)
    with pytest.raises(ValueError, match="cannot be used") as error_info:
        ResponseCache(path)
    assert str(path) in str(error_info.value) and "--no-cache" in str(error_info.value)


# --- whole runs of `sb3-llmae generate` in a subprocess, against the faulty server -------------------

ENV_ID = "MiniGrid-DoorKey-5x5-v0"


def generate_args(server, n_episodes: int, out, workers: int = 1) -> list[str]:
    """`generate --expert llm` in plan mode against the local server, the oracle set to answer."""
    expert = LLMExpert(client=ChatClient(MODEL, base_url=server.base_url), mode="plan")
    server.responder = OracleResponder(ENV_ID, range(n_episodes), expert)
    return ["generate", "--env", ENV_ID, "--expert", "llm", "--model", MODEL, "--base-url", server.base_url,
            "--mode", "plan", "--episodes", str(n_episodes), "--workers", str(workers), "--no-progress",
            "--no-cache", "--timeout", "120", "--out", str(out)]  # fmt: skip


def start_cli(args: list[str]) -> subprocess.Popen:
    # A shell's background jobs (CI's, say) ignore SIGINT, and Python then installs no Ctrl-C handler.
    restore_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    return subprocess.Popen(
        [sys.executable, "-m", "sb3_llmae.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=restore_sigint,
    )


def wait_for(condition, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def saved_episodes(out) -> int:
    return len(list((out / "episodes").glob("seed_*.npz")))


@pytest.mark.parametrize(("fault", "workers"), [("hang", 4), ("rate-limit-storm", 4), ("hang", 1)])
def test_ctrl_c_ends_within_seconds_and_keeps_finished_episodes(tmp_path, fake_openai_server, fault, workers):
    out = tmp_path / "run"
    n_episodes = 8
    args = generate_args(fake_openai_server, n_episodes, out, workers=workers)
    oracle = fake_openai_server.responder
    answered = []

    def answer_two_then_fail(request):
        if len(answered) < 2:
            answered.append(request)
            return oracle(request)
        return FakeReply.hang() if fault == "hang" else FakeReply.rate_limited(retry_after="30")

    fake_openai_server.responder = answer_two_then_fail
    process = start_cli(args)
    wait_for(lambda: saved_episodes(out) >= 2 and fake_openai_server.request_count >= 2 + min(workers, 2))
    time.sleep(0.5)  # every worker now waits: on a reply that never comes, or between retries
    interrupted_at = time.monotonic()
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=30)
    assert time.monotonic() - interrupted_at < 10
    assert process.returncode == 130
    assert "Traceback" not in stderr
    assert "HTTP Request" not in stderr  # the HTTP client's line per request shows only with -v
    assert "2 of 8 episodes finished, saved in" in stderr
    assert saved_episodes(out) == 2

    # the re-run resumes: only the unfinished episodes are played
    fake_openai_server.responder = oracle
    calls_before = fake_openai_server.request_count
    assert main(args) == 0
    assert fake_openai_server.request_count - calls_before == n_episodes - 2
    assert load_demonstrations(out).stats["successes"] == n_episodes


def test_second_run_on_the_same_out_is_refused_and_a_killed_runs_lock_blocks_nothing(
    tmp_path, fake_openai_server
):
    out = tmp_path / "run"
    n_episodes = 6
    args = generate_args(fake_openai_server, n_episodes, out)
    oracle = fake_openai_server.responder
    second_run_done = threading.Event()

    def hold_after_the_first_episode(request):
        if fake_openai_server.request_count > 1:
            second_run_done.wait(120)
        return oracle(request)

    fake_openai_server.responder = hold_after_the_first_episode
    first = start_cli(args)
    wait_for(lambda: saved_episodes(out) >= 1)
    second = start_cli(args)
    _, stderr = second.communicate(timeout=120)
    second_run_done.set()
    assert second.returncode == 2
    assert "Another `generate` run is writing into" in stderr and "Traceback" not in stderr
    # the first run is undisturbed
    first.communicate(timeout=120)
    assert first.returncode == 0
    demos = load_demonstrations(out)
    assert len(demos) == n_episodes == len(list((out / "transcripts").glob("*.jsonl")))

    # a run killed outright leaves its lock file behind: the next run takes over and resumes
    out = tmp_path / "killed"
    args = generate_args(fake_openai_server, n_episodes, out)
    fake_openai_server.latency_s = 0.5
    killed = start_cli(args)
    wait_for(lambda: saved_episodes(out) >= 1)
    killed.kill()
    killed.communicate(timeout=30)
    assert (out / "generate.lock").exists()
    fake_openai_server.latency_s = 0.0
    assert main(args) == 0
    assert load_demonstrations(out).stats["successes"] == n_episodes
