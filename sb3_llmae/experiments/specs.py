"""What a comparison runs: the settings its runs share, one run, and what became of it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from sb3_llmae.experiments.methods import MethodSpec, zoo_ppo_settings
from sb3_llmae.training.config import CRITIC_WARMUP_STEPS, EvalConfig
from sb3_llmae.training.ppo import REFERENCE_N_ENVS, REFERENCE_PPO_KWARGS

RunStatus = Literal["finished", "skipped", "failed"]
# Called with (env steps so far, last greedy success rate or None) while a run trains.
ProgressFn = Callable[[int, float | None], None]


@dataclass(frozen=True)
class CompareSettings:
    """
    What every run of a comparison shares.

    :param env_id: the target env
    :param steps: env steps per run, everything the model trains on the target env counted (the
        critic warm-up of an LLM-initialised model included)
    :param demos: demonstrations directory for methods that clone them and name none
    :param n_envs: training envs per run
    :param max_episode_steps: step limit of training episodes, and of evaluation episodes unless
        ``evaluation`` sets its own; ``None``: the env's own
    :param evaluation: the evaluations every ``evaluation.freq`` env steps (seeds, episodes)
    :param heatmap_freq: env steps between visitation heatmaps; ``None``: ``evaluation.freq``
    :param checkpoint_freq: env steps between resume checkpoints; ``None``: ``evaluation.freq``
    :param ppo_kwargs: PPO settings of every method over the reference ones; a method's own go over these
    """

    env_id: str
    steps: int
    demos: str | None = None
    n_envs: int = REFERENCE_N_ENVS
    max_episode_steps: int | None = None
    evaluation: EvalConfig = field(default_factory=EvalConfig)
    heatmap_freq: int | None = None
    checkpoint_freq: int | None = None
    ppo_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.evaluation, EvalConfig):
            raise ValueError(f"evaluation must be an EvalConfig, got {self.evaluation!r}.")
        for name in ("steps", "n_envs"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        for name in ("heatmap_freq", "checkpoint_freq", "max_episode_steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None), got {value}.")

    @property
    def eval_max_episode_steps(self) -> int | None:
        """:return: the step limit of evaluation episodes"""
        return self.evaluation.max_episode_steps or self.max_episode_steps

    def to_config(self) -> dict[str, Any]:
        """
        :return: the settings as plain data, in ``config.json``'s flat layout (``eval_freq``,
            ``n_eval_episodes``, ``eval_seed``), so that run folders of earlier versions still match
        """
        config: dict[str, Any] = {
            "env_id": self.env_id,
            "steps": self.steps,
            "demos": self.demos,
            "n_envs": self.n_envs,
            "max_episode_steps": self.max_episode_steps,
            "eval_freq": self.evaluation.freq,
            "n_eval_episodes": self.evaluation.n_episodes,
            "eval_seed": self.evaluation.seed,
            "heatmap_freq": self.heatmap_freq,
            "checkpoint_freq": self.checkpoint_freq,
            "ppo_kwargs": dict(self.ppo_kwargs),
        }
        if self.evaluation.max_episode_steps is not None:
            config["eval_max_episode_steps"] = self.evaluation.max_episode_steps
        return config


@dataclass(frozen=True)
class RunSpec:
    """
    One run: a method on a seed, with the shared settings and where it writes.

    :param method: the method
    :param seed: the seed of the model and its envs
    :param settings: the comparison's shared settings
    :param run_dir: the run's folder
    :param sources_dir: where transfer source models are kept, shared by the runs of a comparison
    """

    method: MethodSpec
    seed: int
    settings: CompareSettings
    run_dir: Path
    sources_dir: Path

    @property
    def key(self) -> str:
        """:return: ``<method>/seed<seed>``, the run's name in progress lines and summaries"""
        return f"{self.method.name}/seed{self.seed}"

    @property
    def demos(self) -> str | None:
        """:return: the demonstrations the method clones, or ``None`` if it clones none"""
        if not self.method.needs_demos:
            return None
        return self.method.demos or self.settings.demos

    def _zoo_settings(self) -> tuple[int | None, dict[str, Any]]:
        if self.method.hyperparams is None:
            return None, {}
        return zoo_ppo_settings(self.method.hyperparams, self.settings.env_id)

    @property
    def n_envs(self) -> int:
        """:return: the run's training envs: the method's, else its hyperparameter file's, else --n-envs"""
        if self.method.n_envs is not None:
            return self.method.n_envs
        return self._zoo_settings()[0] or self.settings.n_envs

    @property
    def ppo_kwargs(self) -> dict[str, Any]:
        """
        :return: the PPO settings of the run over the reference ones: the comparison's, then the method's
            hyperparameter file's, then the method's own ``ppo_kwargs``
        """
        return {**self.settings.ppo_kwargs, **self._zoo_settings()[1], **self.method.ppo_kwargs}

    @property
    def critic_warmup_steps(self) -> int:
        """:return: env steps of the critic warm-up (0 for methods that clone no demonstrations)"""
        if not self.method.needs_demos:
            return 0
        warmup = self.method.critic_warmup_steps
        return CRITIC_WARMUP_STEPS if warmup is None else warmup

    def training_settings(self) -> dict[str, Any]:
        """
        :return: how the run trains, every setting resolved: algorithm, envs, PPO settings (the
            reference ones with the run's over them) and critic warm-up; the report lists them
        """
        return {
            "algo": self.method.algo,
            "n_envs": self.n_envs,
            "ppo_kwargs": {**REFERENCE_PPO_KWARGS, **self.ppo_kwargs},
            "critic_warmup_steps": self.critic_warmup_steps,
        }

    def config(self) -> dict[str, Any]:
        """:return: the resolved settings, as written to ``config.json``"""
        settings = self.settings.to_config()
        # the run's own demonstrations are "demos" below; --demos alone is no part of a scratch run
        del settings["demos"]
        return {
            "method": self.method.to_dict(),
            "seed": self.seed,
            "settings": settings,
            "demos": None if self.demos is None else str(Path(self.demos).resolve()),
            "training": self.training_settings(),
        }


@dataclass(frozen=True)
class RunOutcome:
    """
    What became of a run.

    :param key: the run's name (``<method>/seed<seed>``)
    :param status: ``"finished"`` (trained now), ``"skipped"`` (finished before) or ``"failed"``
    :param run_dir: the run's folder
    :param seconds: wall time of this attempt
    :param error: the error of a failed run, one line (the traceback is in ``error.txt``)
    :param result: the run's ``result.json`` content, if it finished
    """

    key: str
    status: RunStatus
    run_dir: Path
    seconds: float = 0.0
    error: str | None = None
    result: Mapping[str, Any] = field(default_factory=dict)
