"""The one play loop of a policy on fixed env seeds (one episode per seed, all played at once), and
the success rate, return and length it measures."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.policies import BasePolicy

from sb3_llmae.envs import ObsMode, is_success, make_env, minigrid_id, obs_mode_of
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


@dataclass(frozen=True)
class PlayedEpisode:
    """
    One finished episode of :func:`play_episodes`.

    :param index: its position in the seeds played
    :param seed: its reset seed
    :param success: whether it reached the goal (:func:`~sb3_llmae.envs.is_success`)
    :param episode_return: its return
    :param length: its number of steps
    """

    index: int
    seed: int
    success: bool
    episode_return: float
    length: int


# Called with an episode's index and its env after the reset and after every step (e.g. to render).
FrameHook = Callable[[int, gym.Env], None]


def play_episodes(
    model_or_policy: BaseAlgorithm | BasePolicy,
    env_id: str,
    seeds: Sequence[int],
    *,
    obs_mode: ObsMode | None = None,
    max_episode_steps: int | None = None,
    deterministic: bool = True,
    env_kwargs: dict[str, Any] | None = None,
    on_frame: FrameHook | None = None,
) -> Iterator[PlayedEpisode]:
    """
    The one play loop: one episode per seed, all side by side, so that each step is one batched
    forward pass of the policy. A maskable policy (sb3-contrib's ``MaskablePPO``) gets the action
    masks of :func:`~sb3_llmae.masks.minigrid_action_mask`; a recurrent one (``RecurrentPPO``)
    carries its LSTM states from step to step of each episode. It serves :func:`evaluate_success`
    (and through it the callbacks and BC) and :func:`~sb3_llmae.record.record_gif`, as SB3's
    ``evaluate_policy`` serves ``EvalCallback``.

    :param model_or_policy: an SB3 model or policy
    :param env_id: a MiniGrid / BabyAI id (also ``sb3_llmae/<id>``)
    :param seeds: reset seeds, one episode each
    :param obs_mode: observation layout the policy was trained on: ``"image"`` or ``"flat"``; ``None``:
        the layout in which ``env_id`` gives the policy's observation space
    :param max_episode_steps: step limit; ``None`` keeps the env's own
    :param deterministic: greedy actions (``True``) or sampled ones
    :param env_kwargs: passed to :func:`~sb3_llmae.envs.make_env` (e.g. ``render_mode``)
    :param on_frame: called with the episode's index and env after each reset and each step
    :return: the episodes, each as soon as it ends (sort by ``index`` for the order of ``seeds``)
    :raises ValueError: if no seed is given, or the env's observations do not fit the policy
    """
    if len(seeds) == 0:
        raise ValueError("play_episodes needs at least one seed.")
    env_id = minigrid_id(env_id)
    if obs_mode is None:
        obs_mode = obs_mode_of(env_id, model_or_policy.observation_space)
    envs = [
        make_env(env_id, obs_mode=obs_mode, max_episode_steps=max_episode_steps, **(env_kwargs or {}))
        for _ in seeds
    ]
    try:
        if envs[0].observation_space != model_or_policy.observation_space:
            raise ValueError(
                f"{env_id} with obs_mode={obs_mode!r} gives observations of {envs[0].observation_space}, "
                f"but the policy expects {model_or_policy.observation_space}: "
                "pass the obs_mode it was trained on."
            )
        yield from _play(model_or_policy, envs, [int(seed) for seed in seeds], deterministic, on_frame)
    finally:
        for env in envs:
            env.close()


def _play(
    model_or_policy: BaseAlgorithm | BasePolicy,
    envs: list[gym.Env],
    seeds: list[int],
    deterministic: bool,
    on_frame: FrameHook | None,
) -> Iterator[PlayedEpisode]:
    observations = [env.reset(seed=seed)[0] for env, seed in zip(envs, seeds, strict=True)]
    returns = [0.0] * len(seeds)
    lengths = [0] * len(seeds)
    running = list(range(len(seeds)))
    if on_frame is not None:
        for i in running:
            on_frame(i, envs[i])
    memory = PolicyMemory(model_or_policy, len(seeds))
    masked = isinstance(policy_of(model_or_policy), MaskableActorCriticPolicy)
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
            returns[i] += float(reward)
            lengths[i] += 1
            if on_frame is not None:
                on_frame(i, envs[i])
            if terminated or truncated:
                yield PlayedEpisode(i, seeds[i], is_success(terminated, reward), returns[i], lengths[i])
            else:
                still_running.append(i)
        running = still_running


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
    Play one episode per seed (:func:`play_episodes`) and report success, return and length.

    A MiniGrid layout depends only on its reset seed, so the same seeds give comparable figures
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
    episodes = sorted(
        play_episodes(
            model_or_policy,
            env_id,
            seeds,
            obs_mode=obs_mode,
            max_episode_steps=max_episode_steps,
            deterministic=deterministic,
            env_kwargs=env_kwargs,
        ),
        key=lambda episode: episode.index,
    )
    return EvaluationResult(
        seeds=tuple(episode.seed for episode in episodes),
        successes=tuple(episode.success for episode in episodes),
        returns=tuple(episode.episode_return for episode in episodes),
        lengths=tuple(episode.length for episode in episodes),
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
