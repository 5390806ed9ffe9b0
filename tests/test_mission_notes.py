"""The LLM expert on BabyAI missions: observation text, prompts, and an episode against the test server."""

from __future__ import annotations

import re

import pytest

from sb3_llmae import generate_demonstrations
from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts import LLMExpert
from sb3_llmae.experts.babyai import BabyAIEpisode
from sb3_llmae.experts.llm import ChatClient, ChatSettings
from sb3_llmae.experts.llm.mission_notes import (
    AFTER_NOTE,
    AND_NOTE,
    ANY_OBJECT_NOTE,
    BEFORE_NOTE,
    LOCATION_NOTE,
    PUT_NEXT_NOTE,
    mission_notes,
)
from sb3_llmae.experts.llm.observation_text import describe_full_map, describe_view
from sb3_llmae.experts.llm.prompts import plan_messages, step_messages
from sb3_llmae.testing.oracle import OracleResponder


def level_with(env_id: str, pattern: str, max_seed: int = 300):
    """:return: the env reset with the first seed whose mission matches ``pattern``, and that seed"""
    env = make_env(env_id)
    for seed in range(max_seed):
        env.reset(seed=seed)
        if re.search(pattern, unwrap_minigrid(env).mission):
            return env, seed
    raise AssertionError(f"no mission of {env_id} matches {pattern!r} in {max_seed} seeds")


@pytest.mark.parametrize(
    ("env_id", "pattern"),
    [
        ("BabyAI-GoToLocal-v0", r"^go to the \w+ \w+$"),
        ("BabyAI-PickupLoc-v0", r"^pick up"),
        ("BabyAI-OpenDoor-v0", r"^open the \w+ door$"),
        ("BabyAI-PutNextLocal-v0", r"^put the \w+ \w+ next to the \w+ \w+$"),
        ("BabyAI-UnlockLocal-v0", r"^open the door$"),
    ],
)
def test_single_missions_are_shown_as_written(env_id, pattern):
    env, _ = level_with(env_id, pattern)
    mission = unwrap_minigrid(env).mission
    view = describe_view(env)
    assert view.splitlines()[0] == f"Mission: {mission}"
    assert describe_full_map(env).splitlines()[0] == f"Mission: {mission}"
    assert step_messages(env)[-1]["content"].startswith(f"Mission: {mission}")
    assert plan_messages(env)[-1]["content"].startswith(f"Mission: {mission}")
    assert (PUT_NEXT_NOTE in view) == mission.startswith("put")
    assert AND_NOTE not in view and AFTER_NOTE not in view and BEFORE_NOTE not in view


@pytest.mark.parametrize(
    ("pattern", "note"),
    [
        (r" and ", AND_NOTE),
        (r", then ", BEFORE_NOTE),
        (r" after you ", AFTER_NOTE),
        (r"behind you", LOCATION_NOTE),
        (r"on your left", LOCATION_NOTE),
        (r"\ba \w+ \w+", ANY_OBJECT_NOTE),
    ],
)
def test_compositions_and_locations_get_their_note(pattern, note):
    env, _ = level_with("BabyAI-BossLevel-v0", pattern)
    view = describe_view(env)
    assert f"Note: {note}" in view.splitlines()[1:8]
    assert f"Note: {note}" in describe_full_map(env)
    # the notes come right after the mission, before what the agent sees
    lines = view.splitlines()
    seen_at = next(index for index, line in enumerate(lines) if line.startswith("You see"))
    assert lines.index(f"Note: {note}") < seen_at


def test_after_means_the_second_clause_first():
    env, _ = level_with("BabyAI-BossLevel-v0", r" after you ")
    assert AFTER_NOTE in mission_notes(unwrap_minigrid(env))
    assert "first do B, then A" in AFTER_NOTE


def test_other_envs_get_no_notes():
    env = make_env("MiniGrid-DoorKey-5x5-v0", seed=0)  # "... open the door and then get to the goal"
    assert mission_notes(unwrap_minigrid(env)) == ()
    assert "Note:" not in describe_view(env) and "Note:" not in describe_full_map(env)


def test_describing_a_level_does_not_change_what_it_verifies():
    # "the ball on your left" is chosen once, from where the agent starts; describing the level
    # later, from elsewhere, must not choose again.
    env, seed = level_with("BabyAI-PickupLoc-v0", r"on your (left|right)|behind you|in front of you")
    minigrid_env = unwrap_minigrid(env)
    chosen = [id(obj) for obj in minigrid_env.instrs.desc.obj_set]
    episode = BabyAIEpisode(minigrid_env, seed)
    reward, terminated = 0.0, False
    while not terminated:
        describe_view(env)
        describe_full_map(env)
        action = episode.act()
        _, reward, terminated, truncated, _ = env.step(action)
        episode.observe(action, float(reward), terminated, truncated)
        assert [id(obj) for obj in minigrid_env.instrs.desc.obj_set] == chosen
        assert not truncated
    assert float(reward) > 0


@pytest.mark.parametrize(
    ("env_id", "mode"), [("BabyAI-PutNextLocalS5N3-v0", "step"), ("BabyAI-GoToSeqS5R2-v0", "plan")]
)
def test_llm_expert_plays_babyai_against_the_test_server(fake_openai_server, tmp_path, env_id, mode):
    client = ChatClient(
        "fake-model", base_url=fake_openai_server.base_url, settings=ChatSettings(max_retries=1, timeout=5)
    )
    expert = LLMExpert(mode=mode, client=client)
    fake_openai_server.responder = OracleResponder(env_id, range(3), expert)
    demos = generate_demonstrations(env_id, expert, n_episodes=3, out_dir=tmp_path, progress_bar=False)
    assert demos.stats["success_rate"] == 1.0
    assert all(
        episode["invalid_replies"] == 0 and episode["fallbacks"] == 0
        for episode in demos.metadata["episodes"]
    )
    first_mission = unwrap_minigrid(make_env(env_id, seed=0)).mission
    prompts = [request.body["messages"][-1]["content"] for request in fake_openai_server.requests]
    assert prompts[0].startswith(f"Mission: {first_mission}")
    if mode == "step":
        assert fake_openai_server.request_count == demos.stats["transitions"]
    else:
        assert fake_openai_server.request_count == 3
        assert any(f"Note: {BEFORE_NOTE}" in prompt or f"Note: {AND_NOTE}" in prompt for prompt in prompts)
