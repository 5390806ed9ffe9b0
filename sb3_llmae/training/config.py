"""Typed settings of behaviour cloning and evaluation: the one place their defaults are written."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class EvalConfig:
    """
    How a policy is evaluated: the same fixed seeds for greedy and sampled actions.

    :param seed: first evaluation seed; episodes run on ``seed, seed + 1, ...``. Keep it apart from
        the demonstrations' seeds, or the success rate says how well the policy memorised them
    :param n_episodes: episodes per evaluation (for each kind of action)
    :param freq: env steps between evaluations during training
    :param max_episode_steps: step limit of evaluation episodes; ``None`` keeps the env's own
    """

    seed: int = 1_000_000
    n_episodes: int = 20
    freq: int = 10_000
    max_episode_steps: int | None = None

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise ValueError(f"EvalConfig.seed must be >= 0, got {self.seed}.")
        for name in ("n_episodes", "freq"):
            _check_positive_int(f"EvalConfig.{name}", getattr(self, name))
        if self.max_episode_steps is not None:
            _check_positive_int("EvalConfig.max_episode_steps", self.max_episode_steps)

    @property
    def seeds(self) -> tuple[int, ...]:
        """:return: the evaluation seeds, in order"""
        return tuple(range(self.seed, self.seed + self.n_episodes))


@dataclass(frozen=True)
class BCConfig:
    """
    How demonstrations are behaviour-cloned into a policy (imitation's ``BC``).

    :param epochs: largest number of passes over the demonstrations
    :param batch_size: transitions per gradient step
    :param learning_rate: Adam's learning rate
    :param ent_weight: weight of the entropy bonus in the BC loss
    :param l2_weight: weight of the L2 penalty on all the policy's parameters
    :param stop_at_success: stop once the greedy success rate on the evaluation seeds reaches this
        (``None``: run every epoch)
    :param eval_every: epochs between evaluations of the greedy success rate
    :param refine_chunks: parts in which an interval that jumped past ``stop_at_success`` is repeated
        (1: keep the first evaluation that reaches it, however far past)
    :param seed: seed of the order in which demonstrations are batched
    """

    epochs: int = 15
    batch_size: int = 32
    learning_rate: float = 1e-3
    ent_weight: float = 1e-3
    l2_weight: float = 0.0
    stop_at_success: float | None = None
    eval_every: int = 2
    refine_chunks: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("epochs", "batch_size", "eval_every", "refine_chunks"):
            _check_positive_int(f"BCConfig.{name}", getattr(self, name))
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"BCConfig.learning_rate must be a positive number, got {self.learning_rate}.")
        for name in ("ent_weight", "l2_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"BCConfig.{name} must be a number >= 0, got {value}.")
        if self.stop_at_success is not None and not 0.0 < self.stop_at_success <= 1.0:
            raise ValueError(
                f"BCConfig.stop_at_success must lie in (0, 1] or be None, got {self.stop_at_success}."
            )


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
