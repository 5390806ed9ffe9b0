"""Small, fast training set-ups shared by the pretraining, init and CLI tests."""

from __future__ import annotations

from typing import Any

import torch as th
from stable_baselines3 import PPO

from sb3_llmae import Demonstrations, generate_demonstrations, make_ppo
from sb3_llmae.training.ppo import InitMode
from tests.conftest import ScriptedExpert

ENV_ID = "MiniGrid-Empty-5x5-v0"
# 2 envs x 32 steps: one PPO rollout is 64 env steps.
SMALL_PPO_KWARGS: dict[str, Any] = {"n_steps": 32, "batch_size": 32, "n_epochs": 2, "learning_rate": 3e-4}
# Empty-5x5 demonstrations are 5 steps each: small batches and a high learning rate clone them in seconds.
FAST_BC_KWARGS: dict[str, Any] = {"batch_size": 8, "learning_rate": 3e-3}


def empty_5x5_demos(n_episodes: int = 8, obs_mode: str = "image") -> Demonstrations:
    """:return: scripted (optimal) demonstrations of Empty-5x5"""
    return generate_demonstrations(
        ENV_ID, ScriptedExpert(), n_episodes, obs_mode=obs_mode, progress_bar=False
    )


def small_ppo(seed: int = 0, init: InitMode = "actor") -> PPO:
    """:return: an untrained PPO on Empty-5x5 grid observations, built as ``llm_init_ppo`` builds it"""
    return make_ppo(ENV_ID, init=init, n_envs=2, seed=seed, **SMALL_PPO_KWARGS)


def state_of(module: th.nn.Module) -> dict[str, th.Tensor]:
    """:return: a copy of the module's weights"""
    return {name: tensor.detach().clone() for name, tensor in module.state_dict().items()}


def same_weights(first: dict[str, th.Tensor], second: dict[str, th.Tensor]) -> bool:
    """:return: whether two weight copies are equal"""
    return first.keys() == second.keys() and all(th.equal(first[name], second[name]) for name in first)
