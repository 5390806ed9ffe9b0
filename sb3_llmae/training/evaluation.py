"""Greedy success rate of a policy on fixed env seeds: one episode per seed, all played at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_llmae.envs import ObsMode, make_env, obs_mode_of


@dataclass(frozen=True)
class EvaluationResult:
    """
    What a policy did on one episode per seed.

    :param seeds: the env reset seeds, one episode each
    :param successes: whether each episode reached the goal (terminated with a positive reward)
    :param returns: the return of each episode
    :param lengths: the number of steps of each episode
    """

    seeds: tuple[int, ...]
    successes: tuple[bool, ...]
    returns: tuple[float, ...]
    lengths: tuple[int, ...]

    @property
    def success_rate(self) -> float:
        """:return: fraction of successful episodes"""
        return float(np.mean(self.successes))

    @property
    def mean_return(self) -> float:
        """:return: mean episode return"""
        return float(np.mean(self.returns))

    @property
    def mean_length(self) -> float:
        """:return: mean episode length"""
        return float(np.mean(self.lengths))


def evaluate_success(
    model_or_policy: BaseAlgorithm | BasePolicy,
    env_id: str,
    seeds: Sequence[int],
    obs_mode: ObsMode | None = None,
    max_episode_steps: int | None = None,
    deterministic: bool = True,
    env_kwargs: dict[str, Any] | None = None,
) -> EvaluationResult:
    """
    Play one episode per seed and report success, return and length.

    The episodes run side by side so that each step is one batched forward pass of the policy;
    a MiniGrid layout depends only on its reset seed, so the same seeds give comparable figures
    across checkpoints.

    :param model_or_policy: an SB3 model or policy
    :param env_id: a MiniGrid / BabyAI id
    :param seeds: reset seeds, one episode each
    :param obs_mode: observation layout the policy was trained on: ``"image"`` or ``"flat"``; ``None``:
        the layout in which ``env_id`` gives the policy's observation space
    :param max_episode_steps: step limit; ``None`` keeps the env's own
    :param deterministic: greedy actions (``True``) or sampled ones
    :param env_kwargs: passed to the env constructor
    :return: the result, episodes in the order of ``seeds``
    :raises ValueError: if no seed is given, or the env's observations do not fit the policy
    """
    if len(seeds) == 0:
        raise ValueError("evaluate_success needs at least one seed.")
    if obs_mode is None:
        obs_mode = obs_mode_of(env_id, model_or_policy.observation_space)
    envs = [
        make_env(env_id, obs_mode=obs_mode, max_episode_steps=max_episode_steps, **(env_kwargs or {}))
        for _ in seeds
    ]
    if envs[0].observation_space != model_or_policy.observation_space:
        raise ValueError(
            f"{env_id} with obs_mode={obs_mode!r} gives observations of {envs[0].observation_space}, "
            f"but the policy expects {model_or_policy.observation_space}: "
            "pass the obs_mode it was trained on."
        )
    observations = [env.reset(seed=int(seed))[0] for env, seed in zip(envs, seeds, strict=True)]
    successes = [False] * len(seeds)
    returns = [0.0] * len(seeds)
    lengths = [0] * len(seeds)
    running = list(range(len(seeds)))
    try:
        while running:
            actions, _ = model_or_policy.predict(
                np.stack([observations[i] for i in running]), deterministic=deterministic
            )
            still_running = []
            for i, action in zip(running, actions, strict=True):
                observations[i], reward, terminated, truncated, _ = envs[i].step(int(action))
                reward = float(reward)
                returns[i] += reward
                lengths[i] += 1
                if terminated or truncated:
                    successes[i] = bool(terminated and reward > 0)
                else:
                    still_running.append(i)
            running = still_running
    finally:
        for env in envs:
            env.close()
    return EvaluationResult(
        seeds=tuple(int(seed) for seed in seeds),
        successes=tuple(successes),
        returns=tuple(returns),
        lengths=tuple(lengths),
    )
