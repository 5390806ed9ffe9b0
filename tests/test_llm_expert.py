import json

import pytest

from sb3_llmae import generate_demonstrations, load_demonstrations
from sb3_llmae.envs import make_env
from sb3_llmae.experts.llm import ChatClient, ChatSettings, LLMEndpointError, LLMRequestError
from sb3_llmae.experts.llm.expert import LLMExpert, NoActionError
from sb3_llmae.testing.oracle import OracleResponder
from sb3_llmae.testing.server import FakeReply

ENV_ID = "MiniGrid-DoorKey-5x5-v0"
SECRET = "sk-test-SECRET-expert-987"


def make_expert(server, mode="step", cache=None, **kwargs) -> LLMExpert:
    client = ChatClient(
        "fake-model",
        base_url=server.base_url,
        api_key=SECRET,
        cache=cache,
        settings=ChatSettings(max_retries=2, backoff_base_s=0.01, timeout=5),
    )
    return LLMExpert(mode=mode, client=client, **kwargs)


@pytest.mark.parametrize("mode", ["step", "plan"])
def test_oracle_llm_solves_doorkey(fake_openai_server, tmp_path, mode):
    expert = make_expert(fake_openai_server, mode)
    fake_openai_server.responder = OracleResponder(ENV_ID, range(3), expert)
    demos = generate_demonstrations(ENV_ID, expert, n_episodes=3, out_dir=tmp_path, progress_bar=False)
    assert demos.stats["success_rate"] == 1.0
    calls = fake_openai_server.request_count
    if mode == "plan":
        assert calls == 3
    else:
        assert calls == demos.stats["transitions"]
    assert expert.client.usage.calls == calls
    episode = demos.metadata["episodes"][0]
    assert episode["requests"] >= 1 and episode["invalid_replies"] == 0 and episode["fallbacks"] == 0
    transcript = [
        json.loads(line) for line in (tmp_path / "transcripts" / "seed_0.jsonl").read_text().splitlines()
    ]
    assert transcript[0]["messages"][0]["role"] == "system"
    assert {"reply", "parsed", "latency_s", "prompt_tokens", "completion_tokens", "cached"} <= transcript[
        0
    ].keys()
    loaded = load_demonstrations(tmp_path, make_env(ENV_ID).observation_space)
    assert loaded.metadata["expert"]["kind"] == "llm"
    assert loaded.metadata["expert"]["mode"] == mode


def test_reply_without_action_is_corrected_once_then_falls_back(fake_openai_server):
    expert = make_expert(fake_openai_server)
    fake_openai_server.enqueue("I like turtles.", "Action: forward")
    env = make_env(ENV_ID)
    env.reset(seed=0)
    episode = expert.start_episode(env.unwrapped, 0)
    assert episode.act() == 2
    assert episode.n_invalid_replies == 1
    correction = fake_openai_server.requests[-1].body["messages"]
    assert correction[-2] == {"role": "assistant", "content": "I like turtles."}
    assert correction[-1]["content"] == expert.step_template.correction

    fake_openai_server.enqueue("No idea.", "Still no idea.")
    assert episode.act() in (0, 1)  # the default fallback: a random turn
    summary = episode.summary()
    assert summary["invalid_replies"] == 3 and summary["fallbacks"] == 1
    assert summary["transcript"][-1]["kind"] == "fallback"


def test_fallback_raise(fake_openai_server):
    expert = make_expert(fake_openai_server, fallback="raise")
    fake_openai_server.enqueue("?", "?")
    env = make_env(ENV_ID)
    env.reset(seed=0)
    with pytest.raises(NoActionError, match="no valid action"):
        expert.start_episode(env.unwrapped, 0).act()


def test_plan_mode_replans_when_an_action_changes_nothing(fake_openai_server):
    """Facing a wall, 'forward' changes nothing: the rest of the plan is dropped and a new one asked for."""
    expert = make_expert(fake_openai_server, mode="plan")
    env = make_env("MiniGrid-Empty-5x5-v0")
    env.reset(seed=0)  # agent at (1, 1) facing east: two free cells, then the wall
    episode = expert.start_episode(env.unwrapped, 0)
    fake_openai_server.enqueue("Actions: [forward, forward, forward, left, left]", "Actions: [right]")
    actions = []
    for _ in range(4):
        action = episode.act()
        actions.append(action)
        env.step(action)
        episode.observe(action, 0.0, False, False)
    assert actions == [2, 2, 2, 1]
    assert episode.n_plans == 2
    assert fake_openai_server.request_count == 2


def test_rerun_is_served_from_cache(fake_openai_server, tmp_path):
    cache = tmp_path / "cache.sqlite"
    expert = make_expert(fake_openai_server, cache=cache)
    fake_openai_server.responder = OracleResponder(ENV_ID, range(2), expert)
    first = generate_demonstrations(ENV_ID, expert, n_episodes=2, progress_bar=False)
    calls = fake_openai_server.request_count
    assert calls > 0
    again = make_expert(fake_openai_server, cache=cache)
    second = generate_demonstrations(ENV_ID, again, n_episodes=2, n_workers=2, progress_bar=False)
    assert fake_openai_server.request_count == calls
    assert again.client.usage.cache_hits == calls
    assert second.stats == first.stats


def test_endpoint_failure_keeps_finished_episodes(fake_openai_server, tmp_path):
    expert = make_expert(fake_openai_server, mode="plan")
    oracle = OracleResponder(ENV_ID, range(3), expert)
    answered = []

    def responder(request):
        answered.append(1)
        return oracle(request) if len(answered) == 1 else FakeReply.server_error(500)

    fake_openai_server.responder = responder
    with pytest.raises(LLMRequestError, match="500"):
        generate_demonstrations(ENV_ID, expert, n_episodes=3, out_dir=tmp_path, progress_bar=False)
    assert (tmp_path / "episodes" / "seed_0.npz").exists()
    # the endpoint is back: a re-run with a longer timeout (same expert identity) resumes
    fake_openai_server.responder = oracle
    client = ChatClient(
        "fake-model", base_url=fake_openai_server.base_url, api_key=SECRET, settings=ChatSettings(timeout=9)
    )
    resumed = generate_demonstrations(
        ENV_ID, LLMExpert(mode="plan", client=client), n_episodes=3, out_dir=tmp_path, progress_bar=False
    )
    assert resumed.stats["successes"] == 3


def test_api_key_is_never_written(fake_openai_server, tmp_path, caplog):
    caplog.set_level("DEBUG")
    expert = make_expert(fake_openai_server, cache=tmp_path / "cache.sqlite")
    fake_openai_server.responder = OracleResponder(ENV_ID, range(1), expert)
    generate_demonstrations(ENV_ID, expert, n_episodes=1, out_dir=tmp_path / "out", progress_bar=False)
    assert fake_openai_server.requests[0].headers["authorization"] == f"Bearer {SECRET}"
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in caplog.text
    assert SECRET not in json.dumps(expert.describe())


def test_bad_settings_are_clear(monkeypatch):
    with pytest.raises(ValueError, match="mode"):
        LLMExpert("m", mode="dream", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="model="):
        LLMExpert()
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(LLMEndpointError, match="OPENAI_BASE_URL"):
        LLMExpert("llama3.1")
