"""Step-mode decisions against the test server: text, log-probabilities and JSON answers; what the
replies say about themselves (finish_reason) and about the server (context, no log-probabilities)."""

import math

import numpy as np
import pytest

from sb3_llmae import generate_demonstrations
from sb3_llmae.cli import main
from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.llm.client import ChatClient
from sb3_llmae.experts.llm.errors import LLMRequestError
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.logprobs import LOGPROBS_ANSWER_PROMPT, LogprobsUnsupportedError
from sb3_llmae.experts.llm.observation_text import ACTION_NAMES
from sb3_llmae.experts.llm.parsing import parse_action
from sb3_llmae.experts.llm.prompts import STEP_TEMPLATES
from sb3_llmae.experts.llm.settings import DEFAULT_STOP_SEQUENCES, ChatSettings
from sb3_llmae.experts.llm.structured import JSON_ANSWER_PROMPT
from sb3_llmae.testing.oracle import OracleResponder
from sb3_llmae.testing.server import FakeReply

ENV_ID = "MiniGrid-DoorKey-5x5-v0"
SEEDS = range(2)


def make_expert(server, settings=None, **kwargs) -> LLMExpert:
    client = ChatClient("fake-model", base_url=server.base_url, api_key="sk-test", settings=settings)
    return LLMExpert(client=client, **kwargs)


def oracle_action(oracle: OracleResponder, request: dict, answer_prompt: str) -> int:
    state = request["messages"][-1]["content"].removesuffix(f"\n{answer_prompt}")
    action = parse_action(oracle.answers[state])
    assert action is not None
    return action


def teacher(action: int) -> dict[str, float]:
    """The known distribution: 60% on the right action, 30% on another, 10% on a word."""
    return {str(action): math.log(0.6), f" {(action + 1) % 3}": math.log(0.3), "The": math.log(0.1)}


def test_logprobs_decision_plays_the_most_probable_action_and_keeps_its_distribution(fake_openai_server):
    oracle = OracleResponder(ENV_ID, SEEDS, make_expert(fake_openai_server))
    fake_openai_server.responder = lambda request: FakeReply.with_top_logprobs(
        teacher(oracle_action(oracle, request, LOGPROBS_ANSWER_PROMPT))
    )
    expert = make_expert(fake_openai_server, decision="logprobs")
    demos = generate_demonstrations(ENV_ID, expert, n_episodes=2, progress_bar=False)
    assert demos.stats["success_rate"] == 1.0
    steps = demos.stats["transitions"]
    assert fake_openai_server.request_count == steps
    usage = expert.usage()
    assert usage["completion_tokens"] == steps
    body = fake_openai_server.requests[0].body
    assert (body["max_tokens"], body["logprobs"], body["top_logprobs"]) == (1, True, 20)
    assert body["messages"][-1]["content"].endswith(LOGPROBS_ANSWER_PROMPT)
    # The distribution over the actions, renormalised without the word: 2/3 and 1/3.
    targets = demos.soft_targets()
    acts = demos.transitions.acts
    expected = np.zeros((steps, 7))
    expected[np.arange(steps), acts] = 2 / 3
    expected[np.arange(steps), (acts + 1) % 3] += 1 / 3
    np.testing.assert_allclose(targets, expected, atol=1e-5)
    episode = demos.metadata["episodes"][0]
    assert episode["invalid_replies"] == 0 and episode["fallbacks"] == 0


def test_logprobs_without_an_action_token_or_malformed_fall_back(fake_openai_server):
    fake_openai_server.enqueue(
        FakeReply.with_top_logprobs({"The": -0.1, "9": -2.0}),
        FakeReply(text="2", logprobs={"content": [{"top_logprobs": [{"token": "2", "logprob": "high"}]}]}),
        FakeReply.with_top_logprobs({"2": -0.01}),
    )
    expert = make_expert(fake_openai_server, decision="logprobs")
    episode = expert.start_episode(_reset(ENV_ID), 0)
    episode.act()
    assert episode.action_distribution() is None
    episode.act()
    assert episode.n_invalid_replies == 2 and episode.n_fallbacks == 2
    assert "logprobs_error" in episode.transcript[-2]
    assert episode.act() == 2
    np.testing.assert_allclose(episode.action_distribution(), np.eye(7)[2])
    # No correction round: one request per step.
    assert fake_openai_server.request_count == 3


def test_a_server_without_logprobs_is_a_clear_error(fake_openai_server):
    fake_openai_server.enqueue("Action: forward")
    expert = make_expert(fake_openai_server, decision="logprobs")
    with pytest.raises(LogprobsUnsupportedError, match="drop --decision logprobs"):
        expert.start_episode(_reset(ENV_ID), 0).act()


def test_json_decision_sends_the_schema_and_reads_the_object(fake_openai_server):
    oracle = OracleResponder(ENV_ID, SEEDS, make_expert(fake_openai_server))

    def responder(request):
        schema = request["response_format"]["json_schema"]["schema"]
        assert schema["properties"]["action"]["enum"] == list(ACTION_NAMES.values())
        return f'{{"action": "{ACTION_NAMES[oracle_action(oracle, request, JSON_ANSWER_PROMPT)]}"}}'

    fake_openai_server.responder = responder
    expert = make_expert(fake_openai_server, decision="json")
    demos = generate_demonstrations(ENV_ID, expert, n_episodes=2, progress_bar=False)
    assert demos.stats["success_rate"] == 1.0
    assert fake_openai_server.request_count == demos.stats["transitions"]
    assert demos.action_probs is None


def test_json_decision_on_a_server_that_ignores_the_schema_still_parses_text(fake_openai_server):
    fake_openai_server.enqueue("Reasoning: go.\nAction: left")
    episode = make_expert(fake_openai_server, decision="json").start_episode(_reset(ENV_ID), 0)
    assert episode.act() == 0


def test_decisions_other_than_text_need_step_mode():
    with pytest.raises(ValueError, match="mode='step'"):
        LLMExpert("m", mode="plan", decision="logprobs", base_url="http://127.0.0.1:9/v1")
    with pytest.raises(ValueError, match="Unknown decision"):
        LLMExpert("m", decision="vote", base_url="http://127.0.0.1:9/v1")


def test_stop_sequences_are_sent_by_default(fake_openai_server):
    fake_openai_server.enqueue("Action: left", "Action: left")
    make_expert(fake_openai_server).start_episode(_reset(ENV_ID), 0).act()
    assert fake_openai_server.requests[0].body["stop"] == list(DEFAULT_STOP_SEQUENCES)
    make_expert(fake_openai_server, settings=ChatSettings(stop=None)).start_episode(_reset(ENV_ID), 0).act()
    assert "stop" not in fake_openai_server.requests[1].body
    with pytest.raises(ValueError, match="at most 4"):
        ChatSettings(stop=("a", "b", "c", "d", "e"))


def test_cut_replies_are_recorded_and_counted(fake_openai_server):
    fake_openai_server.enqueue(
        FakeReply(text="Reasoning: the key is", finish_reason="length"), "Action: left", "Action: right"
    )
    episode = make_expert(fake_openai_server).start_episode(_reset(ENV_ID), 0)
    episode.act()
    episode.observe(0, 0.0, False, False)
    episode.act()
    summary = episode.summary()
    assert summary["cut_replies"] == 1
    assert [entry["finish_reason"] for entry in summary["transcript"]] == ["length", "stop", "stop"]


def test_prompt_longer_than_the_context_is_one_clear_error(fake_openai_server):
    fake_openai_server.enqueue(
        FakeReply(
            status=400,
            text="request (928 tokens) exceeds the available context size (512 tokens), try increasing it",
        )
    )
    client = ChatClient("m", base_url=fake_openai_server.base_url, settings=ChatSettings(max_retries=3))
    with pytest.raises(LLMRequestError) as raised:
        client.complete([{"role": "user", "content": "hi"}])
    message = str(raised.value)
    assert "prompt too long for the server's context (928 > 512 tokens)" in message
    assert "--max-history" in message and "compact" in message
    assert "model name" not in message and message.count("400") == 0
    assert fake_openai_server.request_count == 1


def test_plan_fallbacks_after_the_plan_budget_are_told_apart(fake_openai_server):
    fake_openai_server.enqueue("Actions: [left]", "Actions: [left]")
    episode = make_expert(fake_openai_server, mode="plan", max_plans=1).start_episode(_reset(ENV_ID), 0)
    for _ in range(3):
        episode.act()
        episode.observe(0, 0.0, False, False)
    summary = episode.summary()
    assert (
        summary["fallbacks"] == 2 and summary["fallbacks_max_plans"] == 2 and summary["invalid_replies"] == 0
    )


def _reset(env_id: str):
    env = make_env(env_id)
    env.reset(seed=0)
    return unwrap_minigrid(env)


def test_generate_cli_with_logprobs_template_stop_and_history(fake_openai_server, tmp_path, capsys):
    fake_openai_server.responder = lambda request: FakeReply.with_top_logprobs({"2": -0.2, "1": -1.8})
    out = tmp_path / "demos"
    args = ["generate", "--env", "MiniGrid-Empty-5x5-v0", "--expert", "llm", "--model", "m",
            "--base-url", fake_openai_server.base_url, "--episodes", "1", "--max-episode-steps", "3",
            "--decision", "logprobs", "--template", "compact", "--max-history", "1", "--stop", "none",
            "--keep-failures", "--no-cache", "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    # One token per step is what logprobs asks for: no reply counts as cut.
    assert "replies cut by max_tokens: 0 of 3" in printed and "WARNING" not in printed
    body = fake_openai_server.requests[-1].body
    assert "stop" not in body and len(body["messages"]) == 2
    assert body["messages"][0]["content"] == STEP_TEMPLATES["compact"].system
    assert "Your last 1 actions (oldest first): forward." in body["messages"][-1]["content"]
    assert (out / "action_probs.npz").exists()


def test_generate_cli_says_why_plan_mode_fell_back(fake_openai_server, tmp_path, capsys):
    fake_openai_server.responder = lambda request: "Actions: [left]"
    args = ["generate", "--env", "MiniGrid-Empty-5x5-v0", "--expert", "llm", "--model", "m",
            "--base-url", fake_openai_server.base_url, "--episodes", "1", "--max-episode-steps", "4",
            "--mode", "plan", "--max-plans", "2", "--keep-failures", "--no-cache", "--no-progress",
            "--out", str(tmp_path / "d")]  # fmt: skip
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "fallback rate: 50.0% of steps (all after the plan budget ran out: raise --max-plans)" in printed
