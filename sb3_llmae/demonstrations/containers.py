"""Demonstrations in imitation's format, with the metadata that says where they come from."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cached_property
from importlib import metadata as importlib_metadata
from typing import Any

import gymnasium as gym
import numpy as np
from imitation.data.rollout import flatten_trajectories
from imitation.data.types import TrajectoryWithRew, Transitions
from minigrid.core.actions import Actions

from sb3_llmae.envs import ObsMode

VERSIONED_PACKAGES = (
    "sb3-llmae",
    "stable-baselines3",
    "imitation",
    "minigrid",
    "gymnasium",
    "torch",
    "numpy",
)
N_ACTIONS = len(Actions)


@dataclass(frozen=True)
class EpisodeRecord:
    """
    One expert episode.

    :param seed: the env's reset seed
    :param trajectory: observations (policy layout), actions, rewards
    :param success: whether the episode reached the task's goal (terminated with positive reward)
    :param expert_summary: what the expert reported about the episode (usage, transcript, ...)
    """

    seed: int
    trajectory: TrajectoryWithRew
    success: bool
    expert_summary: dict[str, Any] = field(default_factory=dict)

    @property
    def length(self) -> int:
        """:return: number of actions taken"""
        return len(self.trajectory.acts)

    @property
    def episode_return(self) -> float:
        """:return: sum of rewards"""
        return float(np.sum(self.trajectory.rews))


@dataclass
class Demonstrations:
    """
    Expert demonstrations in imitation's format, with the facts needed to trust and reuse them.

    :param trajectories: the kept episodes; observations are exactly what the policy sees
    :param metadata: env id, obs mode, observation space, expert, seeds, statistics, versions
    """

    trajectories: list[TrajectoryWithRew]
    metadata: dict[str, Any]

    @cached_property
    def transitions(self) -> Transitions:
        """:return: the trajectories flattened into imitation ``Transitions``"""
        if not self.trajectories:
            raise ValueError(
                "These demonstrations hold no trajectory (no successful episode?): "
                f"stats={self.stats}. Generate more episodes or use another expert."
            )
        return flatten_trajectories(self.trajectories)

    @property
    def stats(self) -> dict[str, Any]:
        """:return: episodes, successes, success_rate, transitions, mean_length, action_counts"""
        return self.metadata["stats"]

    @property
    def env_id(self) -> str:
        """:return: the env the demonstrations come from"""
        return self.metadata["env_id"]

    @property
    def obs_mode(self) -> ObsMode:
        """:return: ``"image"`` or ``"flat"``"""
        return self.metadata["obs_mode"]

    def __len__(self) -> int:
        return len(self.trajectories)

    def check_observation_space(self, observation_space: gym.Space) -> None:
        """
        Check that a policy with ``observation_space`` can be trained on these demonstrations.

        :param observation_space: the policy's observation space
        :raises ValueError: naming both spaces and the fix
        """
        expected = self.metadata["observation_space"]
        shape = list(getattr(observation_space, "shape", None) or ())
        dtype = str(getattr(observation_space, "dtype", None))
        if shape != expected["shape"] or dtype != expected["dtype"]:
            raise ValueError(
                f"The demonstrations ({self.env_id}, obs_mode={self.obs_mode!r}) hold observations of "
                f"{expected['repr']}, but the policy expects {observation_space}. Train a policy on "
                f"make_env({self.env_id!r}, obs_mode={self.obs_mode!r}), or generate demonstrations "
                "in the policy's observation mode."
            )


def describe_space(space: gym.Space) -> dict[str, Any]:
    """
    :param space: an observation space
    :return: a JSON-serialisable description (repr, shape, dtype) used to check compatibility
    """
    return {"repr": str(space), "shape": list(space.shape or ()), "dtype": str(space.dtype)}


def package_versions() -> dict[str, str]:
    """:return: the versions of the packages that shape the demonstrations"""
    versions = {}
    for name in VERSIONED_PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = "not installed"
    return versions


def compute_stats(records: Sequence[EpisodeRecord], kept: Sequence[TrajectoryWithRew]) -> dict[str, Any]:
    """
    :param records: every episode played
    :param kept: the trajectories kept as demonstrations
    :return: episodes, successes, success_rate, transitions, mean_length, action_counts
    """
    successes = sum(record.success for record in records)
    actions = Counter(int(a) for trajectory in kept for a in trajectory.acts)
    return {
        "episodes": len(records),
        "successes": successes,
        "success_rate": successes / len(records) if records else 0.0,
        "transitions": sum(len(trajectory.acts) for trajectory in kept),
        "mean_length": float(np.mean([len(t.acts) for t in kept])) if kept else 0.0,
        "mean_length_all": float(np.mean([r.length for r in records])) if records else 0.0,
        "action_counts": {Actions(a).name: actions.get(a, 0) for a in range(N_ACTIONS)},
    }
