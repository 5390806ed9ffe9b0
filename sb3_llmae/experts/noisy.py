"""
An expert with a random hand: any expert whose action is replaced, at a given rate, by a uniformly
random one. It simulates demonstrations of LLM quality (detours, wasted steps, failures within a
step limit) from the planner, without an LLM.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from gymnasium import spaces
from minigrid.minigrid_env import MiniGridEnv

from sb3_llmae.experts.base import Expert, ExpertEpisode, NoWayForwardError

logger = logging.getLogger(__name__)


class NoisyEpisode(ExpertEpisode):
    """
    One episode of :class:`NoisyExpert`. On a random step the wrapped episode is not asked for an
    action (an LLM is not called for nothing); it is told, through ``observe``, what was done.

    :param env: the unwrapped MiniGrid env, already reset
    :param seed: the seed the env was reset with
    :param inner: the wrapped expert's episode
    :param epsilon: probability of a random action at each step
    :param rng: the episode's own random generator
    """

    def __init__(
        self, env: MiniGridEnv, seed: int, inner: ExpertEpisode, epsilon: float, rng: np.random.Generator
    ) -> None:
        super().__init__(env, seed)
        self.inner = inner
        self.epsilon = epsilon
        self.rng = rng
        if not isinstance(env.action_space, spaces.Discrete):
            raise TypeError(f"NoisyExpert draws from a Discrete action space, got {env.action_space}.")
        self.n_actions = int(env.action_space.n)
        self.n_steps = 0
        self.random_steps: list[int] = []
        self.gave_up_at: int | None = None

    def act(self) -> int:
        """
        :return: a uniformly random action with probability ``epsilon``, the wrapped expert's otherwise
        """
        # Both draws happen at every step, so the random steps and actions of an episode depend on
        # its seed only, not on what the wrapped expert does.
        is_random = self.rng.random() < self.epsilon
        random_action = int(self.rng.integers(self.n_actions))
        if is_random or self.gave_up_at is not None:
            self.random_steps.append(self.n_steps)
            return random_action
        try:
            return self.inner.act()
        except NoWayForwardError as error:
            if not self.random_steps:
                raise  # the expert failed on its own: a bug to report, not noise
            # Random actions led to a dead end (a target destroyed): the rest of the episode is
            # random, and it most likely fails, as an LLM's episode would.
            logger.info("Seed %d: %s; random actions from step %d on.", self.seed, error, self.n_steps)
            self.gave_up_at = self.n_steps
            self.random_steps.append(self.n_steps)
            return random_action

    def observe(self, action: int, reward: float, terminated: bool, truncated: bool) -> None:
        """Pass the outcome on to the wrapped episode."""
        self.n_steps += 1
        self.inner.observe(action, reward, terminated, truncated)

    def summary(self) -> dict[str, Any]:
        """
        :return: the wrapped episode's summary, plus which steps were random
        """
        return {
            **self.inner.summary(),
            "noise": {
                "random_actions": len(self.random_steps),
                "random_steps": list(self.random_steps),
                "expert_gave_up_at": self.gave_up_at,
            },
        }


class NoisyExpert(Expert):
    """
    Wrap an expert so that at each step, with probability ``epsilon``, a uniformly random action
    (any of MiniGrid's seven) is taken instead of the expert's. ``NoisyExpert(PlannerExpert(), 0.5)``
    on DoorKey-8x8 with a 50-step limit succeeds about as often as the reference LLM (~70%).

    The random steps of an episode depend only on ``seed`` and the episode's env seed, so a
    generation run is reproducible and resumable, whatever the order in which episodes are played.
    Each episode's summary (in the demonstrations' metadata) lists its random steps.

    If random actions lead to a state from which the wrapped expert sees no way to complete the
    mission (it raises :class:`~sb3_llmae.experts.base.NoWayForwardError`, e.g. a random toggle
    opened the box to pick up), the rest of the episode is random, and most likely fails, instead
    of stopping the generation run.

    :param expert: the expert to wrap (it must recover from the states random actions lead to, as
        :class:`~sb3_llmae.experts.planner.PlannerExpert` does)
    :param epsilon: probability of a random action at each step, in [0, 1]
    :param seed: seed of the random actions, combined with each episode's env seed
    """

    def __init__(self, expert: Expert, epsilon: float, seed: int = 0) -> None:
        if not isinstance(expert, Expert):
            raise TypeError(f"NoisyExpert wraps an Expert, got {type(expert).__name__}.")
        if not 0.0 <= epsilon <= 1.0:
            raise ValueError(f"epsilon is a probability: it must lie in [0, 1], got {epsilon}.")
        if seed < 0:
            raise ValueError(f"seed must be non-negative, got {seed}.")
        self.expert = expert
        self.epsilon = float(epsilon)
        self.seed = int(seed)

    def start_episode(self, env: MiniGridEnv, seed: int) -> NoisyEpisode:
        """
        :param env: the unwrapped MiniGrid env, just reset with ``seed``
        :param seed: the reset seed
        :return: the episode's controller
        """
        rng = np.random.default_rng([self.seed, seed])
        return NoisyEpisode(env, seed, self.expert.start_episode(env, seed), self.epsilon, rng)

    def describe(self) -> dict[str, Any]:
        """
        :return: the noise settings and the wrapped expert's description
        """
        return {"kind": "noisy", "epsilon": self.epsilon, "seed": self.seed, "expert": self.expert.describe()}

    def identity(self) -> dict[str, Any]:
        """
        :return: the noise settings and the wrapped expert's identity
        """
        return {"kind": "noisy", "epsilon": self.epsilon, "seed": self.seed, "expert": self.expert.identity()}

    def progress_info(self) -> dict[str, Any]:
        """
        :return: the wrapped expert's live figures
        """
        return self.expert.progress_info()

    def usage(self) -> dict[str, Any]:
        """
        :return: the wrapped expert's usage (an LLM's calls, tokens, cost)
        """
        return self.expert.usage()

    def cancel(self) -> None:
        """Cut short what the wrapped expert's episodes wait for (an LLM request in flight)."""
        self.expert.cancel()
