"""ChatTransport's prepared requests against the ``openai`` client's own ``chat.completions.create``: the
same requests reach the server and the same replies, errors and demonstrations come back."""

import json

import openai
import pytest

from sb3_llmae import generate_demonstrations
from sb3_llmae.experts import LLMExpert
from sb3_llmae.experts.llm import ChatClient, ChatSettings, LLMRequestError
from sb3_llmae.testing import FakeReply
from sb3_llmae.testing.oracle import OracleResponder

MODEL = "fake-model"
SECRET = "sk-test-SECRET-123"
# Headers the two paths may send differently: per-request bookkeeping of the openai client's own loop.
PER_REQUEST_HEADERS = frozenset(
    {"content-length", "x-stainless-retry-count", "x-stainless-read-timeout", "host", "connection"}
)


def sent_headers(request) -> dict[str, str]:
    return {name: value for name, value in request.headers.items() if name not in PER_REQUEST_HEADERS}


@pytest.mark.parametrize("mode", ["step", "plan"])
def test_generation_sends_what_the_openai_client_would_and_plays_the_same(fake_openai_server, mode):
    env_id, seeds = "MiniGrid-DoorKey-5x5-v0", range(3)
    settings = ChatSettings(max_tokens=64, extra_params={"seed": 7})
    client = ChatClient(MODEL, base_url=fake_openai_server.base_url, api_key=SECRET, settings=settings)
    expert = LLMExpert(mode=mode, client=client)
    fake_openai_server.responder = OracleResponder(env_id, seeds, expert)
    demos = generate_demonstrations(env_id, expert, len(seeds), n_workers=3, progress_bar=False)
    ours = fake_openai_server.requests
    assert demos.stats["success_rate"] == 1.0 and len(ours) == client.usage.calls > 0

    # The slow path: the same requests through the openai client's own request building and parsing.
    fake_openai_server.reset()
    reference = openai.OpenAI(
        api_key=SECRET, base_url=fake_openai_server.base_url, max_retries=0, timeout=settings.timeout
    )
    replies = []
    for request in ours:
        completion = reference.chat.completions.create(**request.body)
        replies.append(completion.choices[0].message.content)
    theirs = fake_openai_server.requests
    assert [r.path for r in ours] == [r.path for r in theirs]
    assert [r.body for r in ours] == [r.body for r in theirs]
    assert [json.loads(r.raw) for r in ours] == [r.body for r in ours]
    assert all(sent_headers(a) == sent_headers(b) for a, b in zip(ours, theirs, strict=True))
    # The same answers read back as the same replies.
    fake_openai_server.reset()
    assert [client.complete(r.body["messages"]).text for r in ours] == replies
    reference.close()
    client.close()


def test_openai_environment_headers_are_sent(fake_openai_server, monkeypatch):
    monkeypatch.setenv("OPENAI_ORG_ID", "org-test")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-test")
    with ChatClient(MODEL, base_url=fake_openai_server.base_url, api_key=SECRET) as client:
        assert client.complete([{"role": "user", "content": "hi"}]).text == "echo: hi"
    (request,) = fake_openai_server.requests
    assert request.headers["openai-organization"] == "org-test"
    assert request.headers["openai-project"] == "proj-test"
    assert request.headers["authorization"] == f"Bearer {SECRET}"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("OpenAI/Python")


@pytest.mark.parametrize(
    ("reply", "status", "expected"),
    [
        (FakeReply("quota exceeded", status=429), 429, "HTTP 429: Error code: 429 - quota exceeded"),
        (FakeReply("no such model", status=404), 404, "HTTP 404: Error code: 404 - no such model"),
        (FakeReply.html(status=503), 503, "HTTP 503: Error code: 503"),
    ],
    ids=["rate-limited", "not-found", "html-page"],
)
def test_status_errors_read_as_the_openai_clients_own(fake_openai_server, reply, status, expected):
    fake_openai_server.enqueue(reply)
    settings = ChatSettings(max_retries=0)
    with (
        ChatClient(MODEL, base_url=fake_openai_server.base_url, settings=settings) as client,
        pytest.raises(LLMRequestError) as error_info,
    ):
        client.complete([{"role": "user", "content": "hi"}])
    assert error_info.value.status_code == status
    assert expected in str(error_info.value)
