"""Hard-world and BabyAI entries of hyperparams/ and examples/hard_worlds_methods.yml work as named."""

from __future__ import annotations

import importlib
from pathlib import Path

import gymnasium as gym
import pytest
import yaml
from stable_baselines3 import PPO

from sb3_llmae.envs import minigrid_id
from sb3_llmae.experiments.methods import load_method_specs
from sb3_llmae.features import MinigridFeaturesExtractor, MissionGridFeaturesExtractor

REPO_ROOT = Path(__file__).resolve().parents[1]
HARD_WORLDS = (
    "MiniGrid-MultiRoom-N4-S5-v0",
    "MiniGrid-ObstructedMaze-2Dlh-v0",
    "MiniGrid-LockedRoom-v0",
    "MiniGrid-KeyCorridorS3R3-v0",
    "MiniGrid-DoorKey-16x16-v0",
)
BABYAI = ("sb3_llmae/BabyAI-GoToLocal-mission-v0", "sb3_llmae/BabyAI-UnlockPickup-mission-v0")


def entries(name: str) -> dict:
    return yaml.safe_load((REPO_ROOT / "hyperparams" / name).read_text())


@pytest.mark.parametrize("conf", ["llmae_ppo.yml", "ppo.yml"])
@pytest.mark.parametrize("env_id", HARD_WORLDS + BABYAI)
def test_every_hard_world_has_an_entry_whose_policy_fits_its_env(conf, env_id):
    entry = entries(conf)[env_id]
    for callback in entry.get("callback", []):
        ((name, kwargs),) = callback.items()
        if name == "sb3_llmae.LLMInitCallback":
            assert kwargs["demonstrations"] == f"demos/{env_id.removeprefix('sb3_llmae/')}"
    if not env_id.startswith("sb3_llmae/"):
        assert [wrapper.rsplit(".", 1)[-1] for wrapper in entry["env_wrapper"]] == [
            "MinigridInfoWrapper",
            "MinigridImageWrapper",
        ]
        return
    minigrid_id(env_id)
    # rl-zoo3 evaluates the string with importlib in scope
    policy_kwargs = eval(entry["policy_kwargs"], {"importlib": importlib})
    model = PPO(entry["policy"], gym.make(env_id), policy_kwargs=policy_kwargs, n_steps=16, batch_size=16)
    extractor = model.policy.pi_features_extractor
    expected = MissionGridFeaturesExtractor if "-mission-" in env_id else MinigridFeaturesExtractor
    assert isinstance(extractor, expected)
    model.learn(16)


def test_transfer_methods_name_registered_sources():
    specs = load_method_specs(REPO_ROOT / "examples" / "hard_worlds_methods.yml")
    assert specs and all(spec.init == "transfer" for spec in specs.values())
    for spec in specs.values():
        minigrid_id(spec.source_env)
