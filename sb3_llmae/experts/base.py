"""The interface every expert (planner, LLM) implements."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np
from minigrid.minigrid_env import MiniGridEnv

# The experts make_expert builds by name.
EXPERT_KINDS: tuple[str, ...] = ("planner", "llm")


class ExpertEpisode(ABC):
    """
    One episode of an expert: chooses actions for one env, and remembers what it needs to
    (a plan, a conversation). One instance is used by one thread only.

    :param env: the unwrapped MiniGrid env, already reset; the expert may read its full state
        (``grid``, ``agent_pos``, ``agent_dir``, ``carrying``, ``mission``) and its egocentric
        view (``env.gen_obs()``), but must not step or reset it.
    :param seed: the seed the env was reset with
    """

    def __init__(self, env: MiniGridEnv, seed: int) -> None:
        self.env = env
        self.seed = seed

    @abstractmethod
    def act(self) -> int:
        """
        :return: the action to take in the env's current state
        """

    def action_distribution(self) -> np.ndarray | None:
        """
        :return: the probabilities over all actions from which the last :meth:`act` chose (an LLM's
            log-probabilities, say), kept in the demonstrations as soft targets for BC; ``None`` when
            the expert has none for that step (the default)
        """
        return None

    def observe(self, action: int, reward: float, terminated: bool, truncated: bool) -> None:  # noqa: B027
        """
        Called after each env step with what the action led to. Does nothing by default.

        :param action: the action taken
        :param reward: the reward received
        :param terminated: whether the episode ended in a terminal state
        :param truncated: whether the episode hit its step limit
        """

    def summary(self) -> dict[str, Any]:
        """
        :return: JSON-serialisable facts about this episode (transcript, token usage, ...)
        """
        return {}


class Expert(ABC):
    """
    An expert that plays MiniGrid tasks: a factory of :class:`ExpertEpisode`.
    Implementations hold only configuration and thread-safe shared resources (a client, a
    cache), so that one expert can play several episodes at once.
    """

    @abstractmethod
    def start_episode(self, env: MiniGridEnv, seed: int) -> ExpertEpisode:
        """
        :param env: the unwrapped MiniGrid env, just reset with ``seed``
        :param seed: the reset seed
        :return: the episode's controller
        :raises NotImplementedError: (as :class:`UnsupportedEnvError`) if this expert cannot play the env
        """

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """
        :return: JSON-serialisable description of the expert (kind, settings), recorded in the
            demonstrations' metadata. Must never contain secrets such as API keys.
        """

    def identity(self) -> dict[str, Any]:
        """
        :return: the part of :meth:`describe` that shapes the episodes; a generation run resumes only
            with an expert of the same identity. Operational settings (timeouts, retries) may differ.
        """
        return self.describe()

    def usage(self) -> dict[str, Any]:
        """
        :return: JSON-serialisable totals of what the expert has used so far (calls, tokens, cost),
            recorded in the demonstrations' metadata; none by default
        """
        return {}

    def cancel(self) -> None:  # noqa: B027
        """
        Cut short what the episodes in play are waiting for (a request in flight, a wait between retries),
        so that they end at once; called from another thread when a run is interrupted. Episodes started
        afterwards play as usual. Does nothing by default (an expert that never waits needs nothing).
        """

    def progress_info(self) -> dict[str, Any]:
        """
        :return: short live figures for a progress bar (e.g. tokens used so far); none by default
        """
        return {}


class UnsupportedEnvError(NotImplementedError):
    """An expert was asked to play an env (or a mission) it cannot handle."""


class NoWayForwardError(RuntimeError):
    """
    An expert has no action that completes the mission from the env's current state (e.g. a random
    action destroyed the object to pick up). Experts that can tell raise it, or a subclass, from
    ``act``.
    """
