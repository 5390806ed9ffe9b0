"""obs_mode="mission": the mission's words next to the grid, through make_env, the extractor, BC, compare."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch as th

from sb3_llmae import generate_demonstrations, load_demonstrations, make_ppo
from sb3_llmae.demonstrations import save_demonstrations
from sb3_llmae.envs import make_env, minigrid_id, obs_mode_of
from sb3_llmae.experiments import CompareSettings, MethodSpec, compare, plan_runs
from sb3_llmae.experts import BabyAIExpert
from sb3_llmae.features import MinigridFeaturesExtractor, MissionGridFeaturesExtractor
from sb3_llmae.missions import (
    MAX_MISSION_WORDS,
    MISSION_WORDS,
    PAD_TOKEN,
    UNKNOWN_TOKEN,
    WORD_TOKENS,
    encode_mission,
    mission_grid_shape,
)
from sb3_llmae.training.config import BCConfig, EvalConfig
from tests.training_helpers import FAST_BC_KWARGS, SMALL_PPO_KWARGS

LEVEL = "BabyAI-GoToLocalS6N4-v0"
WORDS_OF_TOKEN = {token: word for word, token in WORD_TOKENS.items()}


def decode(tokens: np.ndarray) -> str:
    return " ".join(WORDS_OF_TOKEN[int(token)] for token in tokens if token != PAD_TOKEN)


def test_encoding_right_aligns_words_and_flags_cuts():
    tokens, cut = encode_mission("Go to the red ball")
    assert not cut and tokens.shape == (MAX_MISSION_WORDS,) and tokens.dtype == np.uint8
    assert (tokens[:-5] == PAD_TOKEN).all() and decode(tokens) == "go to the red ball"
    assert encode_mission("go to the zebra")[0][-1] == UNKNOWN_TOKEN
    tokens, cut = encode_mission(" ".join(["red"] * (MAX_MISSION_WORDS + 1)) + " ball", length=4)
    assert cut and decode(tokens) == "red red red ball"


def test_every_babyai_word_is_known():
    env = make_env("BabyAI-BossLevel-v0", obs_mode="mission")
    for seed in range(30):
        observation, _ = env.reset(seed=seed)
        mission = env.unwrapped.mission
        assert UNKNOWN_TOKEN not in observation[-MAX_MISSION_WORDS:], mission
        assert decode(observation[-MAX_MISSION_WORDS:]) == mission.replace(",", "")
    assert len(set(MISSION_WORDS)) == len(MISSION_WORDS)


def test_mission_observation_is_the_grid_then_the_mission():
    mission_env = make_env(LEVEL, obs_mode="mission")
    image_env = make_env(LEVEL, obs_mode="image")
    missions = set()
    for seed in range(5):
        observation, _ = mission_env.reset(seed=seed)
        image, _ = image_env.reset(seed=seed)
        assert observation in mission_env.observation_space
        np.testing.assert_array_equal(observation[: image.size], image.reshape(-1))
        missions.add(decode(observation[image.size :]))
        assert decode(observation[image.size :]) == mission_env.unwrapped.mission
    assert len(missions) > 1  # the mission changes between episodes, and the observation says so
    space = mission_env.observation_space
    assert mission_grid_shape(space, 10) == (7, 7, 3)
    assert mission_grid_shape(image_env.observation_space, 10) is None
    assert mission_grid_shape(make_env(LEVEL, obs_mode="flat").observation_space, 10) is None
    assert obs_mode_of(LEVEL, space) == "mission"


def test_registered_mission_ids_map_back():
    assert minigrid_id("sb3_llmae/BabyAI-GoToLocal-mission-v0") == "BabyAI-GoToLocal-v0"
    import gymnasium as gym

    env = gym.make("sb3_llmae/BabyAI-GoToLocal-mission-v0")
    assert env.observation_space == make_env("BabyAI-GoToLocal-v0", obs_mode="mission").observation_space


def test_extractor_reads_the_mission():
    space = make_env(LEVEL, obs_mode="mission").observation_space
    th.manual_seed(0)
    extractor = MissionGridFeaturesExtractor(space, features_dim=32)
    grid = np.zeros(space.shape[0] - MAX_MISSION_WORDS, dtype=np.uint8) + 1
    observations = th.as_tensor(
        np.stack(
            [
                np.concatenate([grid, encode_mission(mission)[0]])
                for mission in ("go to the red ball", "go to the red key")
            ]
        ),
        dtype=th.float32,
    )
    features = extractor(observations)
    assert features.shape == (2, 32)
    assert not th.allclose(features[0], features[1])
    with pytest.raises(ValueError, match="obs_mode='mission'"):
        MissionGridFeaturesExtractor(make_env(LEVEL).observation_space)


def test_make_ppo_picks_the_mission_extractor():
    model = make_ppo(LEVEL, obs_mode="mission", n_envs=2, seed=0, **SMALL_PPO_KWARGS)
    assert isinstance(model.policy.pi_features_extractor, MissionGridFeaturesExtractor)
    assert isinstance(make_ppo(LEVEL, n_envs=2).policy.pi_features_extractor, MinigridFeaturesExtractor)
    model.learn(64)
    assert model.num_timesteps >= 64


def test_demonstrations_of_another_mode_are_refused(tmp_path: Path):
    demos = generate_demonstrations(LEVEL, BabyAIExpert(), n_episodes=2, obs_mode="image", progress_bar=False)
    save_demonstrations(demos, tmp_path)
    with pytest.raises(ValueError, match="obs_mode='image'"):
        load_demonstrations(tmp_path, make_env(LEVEL, obs_mode="mission").observation_space)


def test_compare_runs_llmae_on_a_babyai_level(tmp_path: Path):
    demos = generate_demonstrations(
        LEVEL, BabyAIExpert(), n_episodes=10, obs_mode="mission", progress_bar=False
    )
    save_demonstrations(demos, tmp_path / "demos")
    settings = CompareSettings(
        LEVEL,
        steps=128,
        n_envs=2,
        evaluation=EvalConfig(freq=64, n_episodes=2),
        demos=str(tmp_path / "demos"),
        ppo_kwargs=SMALL_PPO_KWARGS,
    )
    method = MethodSpec("llmae", init="actor", critic_warmup_steps=64, bc=BCConfig(**FAST_BC_KWARGS))
    runs = plan_runs([method], [0], settings, tmp_path / "runs")
    assert [outcome.status for outcome in compare(runs, progress_bar=False)] == ["finished"]
    run_dir = tmp_path / "runs" / "llmae" / "seed0"
    assert json.loads((run_dir / "result.json").read_text())["env_steps"] >= 128
    assert list((run_dir / "eval_logs").glob("*.npz")) and list((run_dir / "heatmaps").glob("*.png"))
