"""Typed settings of behaviour cloning, evaluation and the KL-to-prior term: the one place their
defaults are written (the CLI builds its flags from these fields)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Literal

# How a PPO model starts: from scratch, with the behaviour-cloned actor, or with the whole BC network.
InitMode = Literal["scratch", "actor", "full"]
INIT_MODES: tuple[str, ...] = ("scratch", "actor", "full")
# Training envs of the reference runs (4 envs x 128 steps per rollout).
REFERENCE_N_ENVS = 4
# PPO hyperparameters of the reference LLM-init runs on DoorKey-8x8 (4 envs x 128 steps, 4 minibatches).
REFERENCE_PPO_KWARGS: MappingProxyType[str, Any] = MappingProxyType(
    {
        "n_steps": 128,
        "batch_size": 128,
        "n_epochs": 4,
        "learning_rate": 1e-4,
        "gamma": 0.99,
        "gae_lambda": 0.95,
        "clip_range": 0.2,
        "ent_coef": 0.01,
        "vf_coef": 0.5,
        "max_grad_norm": 0.5,
    }
)
# Env steps in which the critic of an LLM-initialised model is fitted to the cloned actor.
CRITIC_WARMUP_STEPS = 2048


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

    The defaults fit the demonstrations until the greedy policy (``predict(deterministic=True)``)
    plays held-out seeds well and keep the best evaluation's weights; ``docs/measurements.md`` holds
    the measurements behind each value (an entropy cap, ``max_entropy``, is there as an option).

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
    :param soft_targets: fit the teacher's whole distribution over the actions (cross-entropy to it,
        as kept by ``generate --decision logprobs``) instead of the action it took; steps without one
        count as the action taken
    :param patience: stop after this many evaluations in a row without a new best greedy success
        rate (``None``: train to ``epochs`` or the threshold)
    :param keep_best: end with the weights of the evaluation with the best greedy success rate (the
        latest of equals) rather than the last ones
    :param max_entropy: largest mean entropy (nats) of the cloned action distribution on the
        demonstrations' states: above it, the action head's logits are scaled up (a temperature
        below 1) until the mean entropy equals it; the greedy action does not change (``None``: no cap)
    """

    epochs: int = 100
    batch_size: int = 32
    learning_rate: float = 1e-3
    ent_weight: float = 1e-3
    l2_weight: float = 0.0
    stop_at_success: float | None = 1.0
    eval_every: int = 5
    refine_chunks: int = 4
    seed: int = 0
    soft_targets: bool = False
    patience: int | None = 4
    keep_best: bool = True
    max_entropy: float | None = None

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
        if self.patience is not None:
            _check_positive_int("BCConfig.patience", self.patience)
        if self.max_entropy is not None and not (math.isfinite(self.max_entropy) and self.max_entropy > 0):
            raise ValueError(
                f"BCConfig.max_entropy must be a positive number of nats or None, got {self.max_entropy}."
            )


@dataclass(frozen=True)
class KLConfig:
    """
    The KL-to-prior term of :class:`~sb3_llmae.training.kl_ppo.KLPPO`.

    :param kl_coef: weight ``beta`` of KL(prior || policy) in PPO's loss once the prior is set (0: none)
    :param kl_decay_steps: env steps over which ``beta`` falls linearly to 0, counted from the step at
        which the prior was set (``None``: constant)
    :param critic_learning_rate: learning rate of the critic's own parameters (``None``: the actor's,
        in one parameter group as in PPO)
    """

    kl_coef: float = 0.0
    kl_decay_steps: int | None = None
    critic_learning_rate: float | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.kl_coef) and self.kl_coef >= 0):
            raise ValueError(f"KLConfig.kl_coef must be a number >= 0, got {self.kl_coef}.")
        if self.kl_decay_steps is not None:
            _check_positive_int("KLConfig.kl_decay_steps", self.kl_decay_steps)
        if self.critic_learning_rate is not None and not self.critic_learning_rate > 0:
            raise ValueError(
                f"KLConfig.critic_learning_rate must be positive or None, got {self.critic_learning_rate}."
            )

    def is_default(self) -> bool:
        """:return: whether these are the defaults (no KL term, one learning rate): plain PPO's updates"""
        return self == KLConfig()


# Keys of the plain BC mappings of earlier versions (``bc_kwargs``) that set the evaluation, and the
# EvalConfig field each sets.
LEGACY_EVAL_KEYS: Mapping[str, str] = {
    "eval_episodes": "n_episodes",
    "eval_seed": "seed",
    "eval_max_episode_steps": "max_episode_steps",
}


def split_bc_settings(
    settings: BCConfig | Mapping[str, Any] | None,
) -> tuple[BCConfig, dict[str, Any], bool | None]:
    """
    BC settings as users pass them: a :class:`BCConfig`, or a plain mapping of its fields (as rl-zoo3
    and method YAML files give them), which may also hold the keys of earlier versions
    (``eval_episodes``, ``eval_seed``, ``eval_max_episode_steps``, ``progress_bar``).

    :param settings: the settings (``None``: the defaults)
    :return: the BC settings, the :class:`EvalConfig` fields the mapping sets, and its ``progress_bar``
        (``None``: not set)
    :raises ValueError: naming an unknown key and the valid ones, or an invalid value
    """
    if settings is None:
        return BCConfig(), {}, None
    if isinstance(settings, BCConfig):
        return settings, {}, None
    fields = {field.name for field in dataclasses.fields(BCConfig)}
    unknown = sorted(set(settings) - fields - set(LEGACY_EVAL_KEYS) - {"progress_bar"})
    if unknown:
        raise ValueError(
            f"Unknown BC setting(s) {', '.join(unknown)}: valid ones are {', '.join(sorted(fields))} "
            f"(and {', '.join(LEGACY_EVAL_KEYS)}, progress_bar)."
        )
    evaluation = {LEGACY_EVAL_KEYS[key]: value for key, value in settings.items() if key in LEGACY_EVAL_KEYS}
    progress_bar = settings.get("progress_bar")
    config = BCConfig(**{key: value for key, value in settings.items() if key in fields})
    return config, evaluation, None if progress_bar is None else bool(progress_bar)


def _check_positive_int(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")


# How BC measures its greedy success rate (to stop and to pick its weights): seeds apart from the
# demonstrations' (0, 1, ...) and from EvalConfig's default ones, on which training is reported, so
# that choosing BC's weights on them does not flatter those figures.
BC_EVALUATION = EvalConfig(seed=2_000_000)
