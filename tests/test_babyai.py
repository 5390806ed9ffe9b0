import pytest

from sb3_llmae import generate_demonstrations
from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts import (
    BabyAIExpert,
    NoisyExpert,
    PlannerExpert,
    UnsupportedEnvError,
    planning_expert_for,
)
from sb3_llmae.experts.babyai import BabyAIBotError, BabyAIEpisode
from sb3_llmae.experts.selection import unsupported_reason

# One level of each mission kind, small enough for a unit test.
LEVELS = (
    "BabyAI-GoToLocalS6N4-v0",
    "BabyAI-PickupLoc-v0",
    "BabyAI-OpenDoor-v0",
    "BabyAI-UnlockLocal-v0",
    "BabyAI-PutNextLocalS5N3-v0",
    "BabyAI-Synth-v0",
)


def play(env_id: str, seed: int, episode_factory=None) -> tuple[bool, int]:
    env = make_env(env_id)
    env.reset(seed=seed)
    minigrid_env = unwrap_minigrid(env)
    episode = (episode_factory or BabyAIExpert().start_episode)(minigrid_env, seed)
    for length in range(1, minigrid_env.max_steps + 1):
        action = episode.act()
        _, reward, terminated, truncated, _ = env.step(action)
        episode.observe(action, float(reward), terminated, truncated)
        if terminated or truncated:
            return bool(terminated and float(reward) > 0), length
    raise AssertionError("the env never ended its episode")


@pytest.mark.parametrize("env_id", LEVELS)
def test_bot_solves_every_mission_kind(env_id):
    results = [play(env_id, seed) for seed in range(10)]
    assert all(success for success, _ in results), results


def test_bot_follows_a_noisy_hand():
    # The bot replans after the random steps it did not choose: most episodes still succeed.
    expert = NoisyExpert(BabyAIExpert(), 0.3, seed=0)
    demos = generate_demonstrations(
        "BabyAI-GoToLocalS6N4-v0", expert, n_episodes=20, only_successful=False, progress_bar=False
    )
    assert demos.stats["success_rate"] >= 0.8
    # Seed-by-seed, the noisy episodes are longer than the bot's own.
    clean = generate_demonstrations(
        "BabyAI-GoToLocalS6N4-v0", BabyAIExpert(), n_episodes=20, only_successful=False, progress_bar=False
    )
    assert demos.stats["mean_length"] > clean.stats["mean_length"]
    assert demos.metadata["expert"]["expert"]["kind"] == "babyai_bot"


def test_opening_a_box_is_a_dead_end_the_noisy_wrapper_can_absorb():
    env = make_env("BabyAI-PickupDist-v0")
    for seed in range(50):
        env.reset(seed=seed)
        minigrid_env = unwrap_minigrid(env)
        if "box" in minigrid_env.mission:
            break
    episode = BabyAIEpisode(minigrid_env, seed)
    # Walk up to the box the bot means to pick up, then open it instead: its target is gone.
    while True:
        action = episode.act()
        front = minigrid_env.grid.get(*minigrid_env.front_pos)
        if action == minigrid_env.actions.pickup and front is not None and front.type == "box":
            break
        _, reward, terminated, truncated, _ = env.step(action)
        episode.observe(action, float(reward), terminated, truncated)
        assert not (terminated or truncated)
    toggle = int(minigrid_env.actions.toggle)
    _, reward, terminated, truncated, _ = env.step(toggle)
    episode.observe(toggle, float(reward), terminated, truncated)
    with pytest.raises(BabyAIBotError, match="box was opened"):
        episode.act()
    assert "box was opened" in episode.summary()["gave_up"]


def test_bot_refuses_non_babyai_envs_and_levels_it_cannot_solve():
    env = unwrap_minigrid(make_env("MiniGrid-DoorKey-5x5-v0", seed=0))
    with pytest.raises(UnsupportedEnvError, match="use PlannerExpert"):
        BabyAIExpert().start_episode(env, 0)
    env = unwrap_minigrid(make_env("BabyAI-KeyInBox-v0", seed=0))
    with pytest.raises(UnsupportedEnvError, match="does not solve it"):
        BabyAIExpert().start_episode(env, 0)


def test_planning_expert_for_routes_and_refuses_with_reasons():
    assert isinstance(planning_expert_for("BabyAI-GoToLocal-v0"), BabyAIExpert)
    assert isinstance(planning_expert_for("sb3_llmae/BabyAI-GoToLocal-v0"), BabyAIExpert)
    assert isinstance(planning_expert_for("MiniGrid-DoorKey-5x5-v0"), PlannerExpert)
    with pytest.raises(UnsupportedEnvError, match="cannot imitate its choice"):
        planning_expert_for("MiniGrid-MemoryS7-v0")
    with pytest.raises(UnsupportedEnvError, match="ends the episode on any drop"):
        planning_expert_for("MiniGrid-PutNear-6x6-N2-v0")
    assert unsupported_reason("BabyAI-PutNextLocal-v0") is None
    with pytest.raises(ValueError, match="Unknown MiniGrid env id"):
        planning_expert_for("BabyAI-GoToNowhere-v0")


def test_generate_cli_plays_babyai_with_the_bot(tmp_path, capsys):
    from sb3_llmae.cli import main

    out = tmp_path / "demos"
    args = ["generate", "--env", "BabyAI-GoToLocalS6N4-v0", "--episodes", "3", "--obs-mode", "mission",
            "--no-progress", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    assert "success rate: 100.0%" in capsys.readouterr().out
    status = main(
        ["generate", "--env", "MiniGrid-MemoryS7-v0", "--episodes", "1", "--out", str(tmp_path / "m")]
    )
    assert status != 0
    assert "cannot imitate its choice" in capsys.readouterr().err
