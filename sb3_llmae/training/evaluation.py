"""Greedy success rate of a policy on fixed env seeds: one episode per seed, all played at once."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_llmae.envs import ObsMode, make_env, obs_mode_of
from sb3_llmae.masks import minigrid_action_mask


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
    across checkpoints. A maskable policy (sb3-contrib's ``MaskablePPO``) gets the action masks of
    :func:`~sb3_llmae.masks.minigrid_action_mask`; a recurrent one (``RecurrentPPO``) carries its
    LSTM states from step to step of each episode.

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
    memory = PolicyMemory(model_or_policy, len(seeds))
    masked = isinstance(policy_of(model_or_policy), MaskableActorCriticPolicy)
    try:
        while running:
            predict_kwargs = memory.predict_kwargs(running)
            if masked:
                predict_kwargs["action_masks"] = np.stack([minigrid_action_mask(envs[i]) for i in running])
            actions, states = model_or_policy.predict(
                np.stack([observations[i] for i in running]), deterministic=deterministic, **predict_kwargs
            )
            memory.update(running, states)
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


def policy_of(model_or_policy: BaseAlgorithm | BasePolicy) -> BasePolicy:
    """
    :param model_or_policy: an SB3 model or policy
    :return: the policy
    """
    return model_or_policy.policy if isinstance(model_or_policy, BaseAlgorithm) else model_or_policy


class PolicyMemory:
    """
    The LSTM states of a recurrent policy over a batch of episodes played side by side; nothing for
    a feed-forward policy.

    :param model_or_policy: an SB3 model or policy
    :param n_episodes: number of episodes in the batch
    """

    def __init__(self, model_or_policy: BaseAlgorithm | BasePolicy, n_episodes: int) -> None:
        policy = policy_of(model_or_policy)
        self.states: tuple[np.ndarray, ...] | None = None
        self.started = np.zeros(n_episodes, dtype=bool)
        if isinstance(policy, RecurrentActorCriticPolicy):
            layers, _, hidden = policy.lstm_hidden_state_shape
            self.states = tuple(np.zeros((layers, n_episodes, hidden), dtype=np.float32) for _ in range(2))

    def predict_kwargs(self, running: list[int]) -> dict[str, Any]:
        """
        :param running: indices of the episodes still running, in the order of the batch
        :return: the ``state`` and ``episode_start`` arguments of ``predict`` for them (none if feed-forward)
        """
        if self.states is None:
            return {}
        return {
            "state": tuple(state[:, running] for state in self.states),
            "episode_start": ~self.started[running],
        }

    def update(self, running: list[int], states: tuple[np.ndarray, ...] | None) -> None:
        """
        :param running: the episodes of the batch ``predict`` was called on
        :param states: the LSTM states ``predict`` returned for them
        """
        self.started[running] = True
        if self.states is not None and states is not None:
            for stored, new in zip(self.states, states, strict=True):
                stored[:, running] = new
