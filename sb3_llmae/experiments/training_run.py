"""One run of a comparison: one method on one seed, in its own folder, resumable.

A run folder holds ``config.json`` (the resolved settings), ``eval_logs/`` (the sample-efficiency
evaluations), ``heatmaps/``, ``tensorboard/``, ``checkpoints/`` (resume points), ``model.zip`` and,
once finished, ``result.json``; a failed run leaves ``error.txt`` instead.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal

import torch as th
from filelock import FileLock
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_llmae.envs import make_vec_env
from sb3_llmae.experiments.methods import MethodSpec
from sb3_llmae.training.callbacks import SampleEfficiencyCallback, VisitationHeatmapCallback
from sb3_llmae.training.evaluation import EvaluationResult
from sb3_llmae.training.llm_init import llm_init_ppo
from sb3_llmae.training.ppo import REFERENCE_N_ENVS, make_ppo, needs_action_masks, saved_obs_mode
from sb3_llmae.training.transfer import transfer_ppo

logger = logging.getLogger(__name__)

CONFIG_FILE = "config.json"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
MODEL_FILE = "model.zip"
CHECKPOINTS_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
CHECKPOINT_PREFIX = "model"
ALGOS: MappingProxyType[str, type[OnPolicyAlgorithm]] = MappingProxyType(
    {"ppo": PPO, "maskable": MaskablePPO}
)
_CHECKPOINT_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}_(\d+)_steps\.zip$")

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
    :param max_episode_steps: step limit of training and evaluation episodes; ``None``: the env's own
    :param eval_freq: env steps between evaluations
    :param n_eval_episodes: episodes per evaluation (greedy and sampled, on the same seeds)
    :param eval_seed: first evaluation seed
    :param heatmap_freq: env steps between visitation heatmaps; ``None``: ``eval_freq``
    :param checkpoint_freq: env steps between resume checkpoints; ``None``: ``eval_freq``
    :param ppo_kwargs: PPO settings of every method over the reference ones; a method's own go over these
    """

    env_id: str
    steps: int
    demos: str | None = None
    n_envs: int = REFERENCE_N_ENVS
    max_episode_steps: int | None = None
    eval_freq: int = 10_000
    n_eval_episodes: int = 20
    eval_seed: int = 1_000_000
    heatmap_freq: int | None = None
    checkpoint_freq: int | None = None
    ppo_kwargs: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("steps", "n_envs", "eval_freq", "n_eval_episodes"):
            if getattr(self, name) <= 0:
                raise ValueError(f"{name} must be positive, got {getattr(self, name)}.")
        for name in ("heatmap_freq", "checkpoint_freq", "max_episode_steps"):
            value = getattr(self, name)
            if value is not None and value <= 0:
                raise ValueError(f"{name} must be positive (or None), got {value}.")


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

    def config(self) -> dict[str, Any]:
        """:return: the resolved settings, as written to ``config.json``"""
        return {
            "method": self.method.to_dict(),
            "seed": self.seed,
            "settings": {**asdict(self.settings), "ppo_kwargs": dict(self.settings.ppo_kwargs)},
            "demos": None if self.demos is None else str(Path(self.demos).resolve()),
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


class RunEvaluations(SampleEfficiencyCallback):
    """:class:`SampleEfficiencyCallback` keeping its latest figures (progress lines, ``result.json``)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.last_success_greedy: float | None = None
        self.last_success_sampled: float | None = None

    def evaluate(self) -> tuple[EvaluationResult, EvaluationResult]:
        greedy, sampled = super().evaluate()
        self.last_success_greedy = greedy.success_rate
        self.last_success_sampled = sampled.success_rate
        return greedy, sampled


class ProgressCallback(BaseCallback):
    """
    Report the step count after each rollout, and the greedy success of the latest evaluation.

    :param report: called with (env steps, last greedy success rate or ``None``)
    :param evaluations: the run's evaluation callback, whose latest figures are reported
    """

    def __init__(self, report: ProgressFn, evaluations: RunEvaluations) -> None:
        super().__init__()
        self.report = report
        self.evaluations = evaluations

    def _on_step(self) -> bool:
        return True

    def _on_rollout_end(self) -> None:
        self.report(self.num_timesteps, self.evaluations.last_success_greedy)


def latest_checkpoint(run_dir: Path) -> tuple[int, Path] | None:
    """
    :param run_dir: a run folder
    :return: the step and path of its latest resume checkpoint, if any
    """
    found = []
    for path in (run_dir / CHECKPOINTS_DIR).glob(f"{CHECKPOINT_PREFIX}_*_steps.zip"):
        match = _CHECKPOINT_NAME.match(path.name)
        if match:
            found.append((int(match.group(1)), path))
    return max(found) if found else None


def is_finished(spec: RunSpec) -> bool:
    """
    :param spec: a run
    :return: whether its folder holds a finished run of the same settings
    """
    result_path = spec.run_dir / RESULT_FILE
    config_path = spec.run_dir / CONFIG_FILE
    return (
        result_path.is_file()
        and config_path.is_file()
        and json.loads(config_path.read_text()) == json.loads(json.dumps(spec.config()))
    )


def run_ppo_kwargs(spec: RunSpec) -> dict[str, Any]:
    """:return: the PPO settings of a run: the comparison's, then the method's over them"""
    return {**spec.settings.ppo_kwargs, **spec.method.ppo_kwargs}


def source_model_path(spec: RunSpec) -> Path:
    """
    :param spec: a run of a ``"transfer"`` method
    :return: where its source model is kept: one per source env, steps, seed and PPO settings, so that
        every run and re-run that needs the same source shares it
    """
    method = spec.method
    identity = json.dumps(
        {
            "ppo_kwargs": run_ppo_kwargs(spec),
            "algo": method.algo,
            "n_envs": spec.settings.n_envs,
            "max_episode_steps": spec.settings.max_episode_steps,
        },
        sort_keys=True,
        default=str,
    )
    digest = hashlib.sha256(identity.encode()).hexdigest()[:8]
    return spec.sources_dir / f"{method.source_env}_{method.source_steps}steps_seed{spec.seed}_{digest}.zip"


def train_source_model(spec: RunSpec) -> Path:
    """
    The source model of a ``"transfer"`` run, trained on the method's source env unless a run before
    has trained it (a file lock keeps two runs from training it at once).

    :param spec: a run of a ``"transfer"`` method
    :return: the source model's zip
    """
    path = source_model_path(spec)
    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path.with_suffix(".lock"))):
        if not path.is_file():
            method = spec.method
            logger.info("%s: training the source model on %s", spec.key, method.source_env)
            source = make_ppo(
                method.source_env,
                algo=ALGOS[method.algo],
                n_envs=spec.settings.n_envs,
                max_episode_steps=spec.settings.max_episode_steps,
                seed=spec.seed,
                **run_ppo_kwargs(spec),
            )
            source.learn(method.source_steps)
            partial = path.with_name(path.stem + ".partial.zip")
            source.save(partial)
            os.replace(partial, path)
    return path


def build_model(spec: RunSpec, tensorboard_log: str) -> OnPolicyAlgorithm:
    """
    :param spec: a run
    :param tensorboard_log: the run's TensorBoard folder
    :return: the method's model for the run, before training on the target env
    """
    method, settings = spec.method, spec.settings
    common: dict[str, Any] = {
        "algo": ALGOS[method.algo],
        "n_envs": settings.n_envs,
        "max_episode_steps": settings.max_episode_steps,
        "seed": spec.seed,
        "tensorboard_log": tensorboard_log,
        **run_ppo_kwargs(spec),
    }
    if method.init == "scratch":
        return make_ppo(settings.env_id, **common)
    if method.init == "transfer":
        return transfer_ppo(settings.env_id, train_source_model(spec), **common)
    if spec.demos is None:
        raise ValueError(
            f"Method {method.name!r} clones demonstrations: pass --demos DIR (or give the method 'demos')."
        )
    warmup: dict[str, Any] = (
        {} if method.critic_warmup_steps is None else {"critic_warmup_steps": method.critic_warmup_steps}
    )
    return llm_init_ppo(
        settings.env_id,
        spec.demos,
        init=method.init,
        bc_kwargs=dict(method.bc_kwargs),
        tb_log_name=method.name,
        **warmup,
        **common,
    )


def load_checkpoint(spec: RunSpec, path: Path, tensorboard_log: str) -> OnPolicyAlgorithm:
    """
    :param spec: a run
    :param path: one of its checkpoints
    :param tensorboard_log: the run's TensorBoard folder
    :return: the model saved there, on fresh envs, ready to continue
    """
    algo = ALGOS[spec.method.algo]
    env = make_vec_env(
        spec.settings.env_id,
        n_envs=spec.settings.n_envs,
        obs_mode=saved_obs_mode(path, spec.settings.env_id),
        seed=spec.seed,
        max_episode_steps=spec.settings.max_episode_steps,
        action_masks=needs_action_masks(algo),
    )
    return algo.load(path, env=env, seed=spec.seed, tensorboard_log=tensorboard_log)


def train_run(spec: RunSpec, progress: ProgressFn | None = None) -> RunOutcome:
    """
    Train one run to ``settings.steps`` env steps in its folder, or skip it if it finished before.

    Evaluations, heatmaps and checkpoints every so many env steps (see :class:`CompareSettings`); an
    interrupted run continues from its latest checkpoint. Any error is caught, written to the run's
    ``error.txt`` and returned as a failed outcome, so that one run cannot stop the others.

    :param spec: the run
    :param progress: called after each rollout with the steps so far and the last greedy success rate
    :return: the outcome
    """
    start = time.perf_counter()
    run_dir = spec.run_dir
    if is_finished(spec):
        result = json.loads((run_dir / RESULT_FILE).read_text())
        return RunOutcome(spec.key, "skipped", run_dir, result=result)
    try:
        th.set_num_threads(1)
        run_dir.mkdir(parents=True, exist_ok=True)
        config_path = run_dir / CONFIG_FILE
        config = json.loads(json.dumps(spec.config()))
        if config_path.is_file() and json.loads(config_path.read_text()) != config:
            raise ValueError(
                f"{run_dir} holds a run with other settings (see its {CONFIG_FILE}): use another --out, "
                "or delete that folder to start the run over."
            )
        config_path.write_text(json.dumps(config, indent=2) + "\n")
        (run_dir / ERROR_FILE).unlink(missing_ok=True)
        result = _train(spec, progress)
    except Exception as error:  # one failing run must not stop the others: report it and go on
        (run_dir / ERROR_FILE).write_text(traceback.format_exc())
        logger.error("%s failed: %s", spec.key, error)
        return RunOutcome(
            spec.key,
            "failed",
            run_dir,
            seconds=time.perf_counter() - start,
            error=f"{type(error).__name__}: {error}",
        )
    return RunOutcome(spec.key, "finished", run_dir, seconds=time.perf_counter() - start, result=result)


def _train(spec: RunSpec, progress: ProgressFn | None) -> dict[str, Any]:
    settings, run_dir = spec.settings, spec.run_dir
    start = time.perf_counter()
    tensorboard_log = str(run_dir / TENSORBOARD_DIR)
    checkpoint = latest_checkpoint(run_dir)
    if checkpoint is None:
        model = build_model(spec, tensorboard_log)
    else:
        logger.info("%s: resuming from %s", spec.key, checkpoint[1])
        model = load_checkpoint(spec, checkpoint[1], tensorboard_log)
    evaluations = RunEvaluations(
        settings.env_id,
        eval_freq=settings.eval_freq,
        n_eval_episodes=settings.n_eval_episodes,
        log_dir=run_dir,
        eval_seed=settings.eval_seed,
        max_episode_steps=settings.max_episode_steps,
        # the starting point (a BC prior, a transferred policy) is part of the curve; a resumed run has it
        eval_at_start=checkpoint is None,
    )
    callbacks: list[BaseCallback] = [
        evaluations,
        VisitationHeatmapCallback(save_freq=settings.heatmap_freq or settings.eval_freq, log_dir=run_dir),
        CheckpointCallback(
            save_freq=max((settings.checkpoint_freq or settings.eval_freq) // settings.n_envs, 1),
            save_path=str(run_dir / CHECKPOINTS_DIR),
            name_prefix=CHECKPOINT_PREFIX,
        ),
    ]
    if progress is not None:
        callbacks.append(ProgressCallback(progress, evaluations))
    remaining = settings.steps - model.num_timesteps
    if remaining > 0:
        model.learn(
            remaining,
            callback=CallbackList(callbacks),
            reset_num_timesteps=False,
            tb_log_name=spec.method.name,
        )
    if evaluations.last_step is None or evaluations.last_step < settings.steps:
        if remaining <= 0:  # learn() never ran (the warm-up already took every step): set the callback up
            evaluations.init_callback(model)
            evaluations.num_timesteps = model.num_timesteps
        evaluations.evaluate()  # the final score is read at the last evaluation: make it the last step
    model.save(run_dir / MODEL_FILE)
    result = {
        "env_steps": int(model.num_timesteps),
        "seconds": round(time.perf_counter() - start, 1),
        "resumed_from": None if checkpoint is None else checkpoint[0],
        "final_success_greedy": evaluations.last_success_greedy,
        "final_success_sampled": evaluations.last_success_sampled,
    }
    (run_dir / RESULT_FILE).write_text(json.dumps(result, indent=2) + "\n")
    if progress is not None:
        progress(int(model.num_timesteps), evaluations.last_success_greedy)
    return result
