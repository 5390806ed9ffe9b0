"""Success and return on fixed seeds every N env steps, greedy and sampled, in the reference layout."""

from __future__ import annotations

import csv
import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback, EventCallback
from stable_baselines3.common.vec_env import VecEnv

from sb3_llmae.atomic_files import write_text_atomic
from sb3_llmae.envs import DEFAULT_OBS_MODE, ObsMode, minigrid_id, obs_mode_of, vec_env_id
from sb3_llmae.run_layout import (
    CSV_COLUMNS,
    EVAL_LOGS_DIR,
    EVALUATIONS_CSV,
    THRESHOLDS_FILE,
    ZOO_EVALUATIONS_FILE,
    EvaluationArrays,
    eval_file_name,
    is_ours,
    zoo_evaluations,
)
from sb3_llmae.training.callbacks.run_dir import resolve_log_dir
from sb3_llmae.training.config import EvalConfig
from sb3_llmae.training.evaluation import EvaluationResult, evaluate_success

logger = logging.getLogger(__name__)

ACTION_KINDS = ("greedy", "sampled")
# TensorBoard / logger namespace of the figures (SB3's EvalCallback owns eval/).
TB_NAMESPACE = "llmae_eval"


class SampleEfficiencyCallback(EventCallback):
    """
    Evaluate the model every ``eval_freq`` env steps (whatever the number of envs) on fixed seeds,
    with greedy and with sampled actions, one episode per seed, all played as one batch.

    Each evaluation is logged under its own namespace, ``llmae_eval/success_rate_greedy``,
    ``llmae_eval/mean_reward_greedy``, ``llmae_eval/mean_ep_length_greedy`` and the same ``*_sampled``
    (SB3's ``EvalCallback`` owns ``eval/*``), and written under ``log_dir/eval_logs/``:
    ``eval_step{N}.npz`` in the reference system's layout (``returns``, ``success``, ``mask``,
    ``success_mask``, ``eval_seeds``, ``step``: sampled actions, as the reference measured; plus
    ``returns_greedy``, ``success_greedy``, ``lengths``, ``lengths_greedy``), a running
    ``evaluations.csv``, and ``thresholds.json`` with the first step each success threshold was
    reached. ``log_dir/evaluations.npz`` holds all evaluations as SB3's ``EvalCallback`` writes them
    (``timesteps``, ``results``, ``ep_lengths``, ``successes``: greedy, as ``EvalCallback``'s default;
    ``*_sampled`` too), which rl-zoo3's ``all_plots`` and ``plot_from_file`` read. Where that file is
    another writer's (rl-zoo3's own ``EvalCallback`` in the same run folder), it is left alone and
    ``eval_logs/evaluations.npz`` is written instead.

    Sampled actions are drawn from a torch generator seeded by the step, forked from the global one:
    the evaluation neither changes nor depends on the training's random stream.

    :param eval_env: the env id to evaluate on (also ``sb3_llmae/<id>``), or a VecEnv whose first env's
        id is used; ``None``: the training envs' id
    :param eval_freq: env steps between evaluations
    :param n_eval_episodes: episodes per evaluation, on seeds ``eval_seed, eval_seed + 1, ...``
    :param log_dir: folder of ``eval_logs/``; ``None``: the training envs' ``Monitor`` folder (rl-zoo3's
        run folder), else the model's logger folder (its TensorBoard run folder)
    :param eval_seed: first evaluation seed
    :param max_episode_steps: step limit of evaluation episodes; ``None`` keeps the env's own
        (640 on DoorKey-8x8, the reference's limit)
    :param success_thresholds: success rates whose first step is recorded, for each kind of action
    :param eval_at_start: also evaluate when training starts (e.g. to measure a behaviour-cloned prior)
    :param env_kwargs: passed to the evaluation env's constructor
    :param callback_after_eval: called after each evaluation
    :param verbose: 1: log each evaluation at INFO level
    """

    def __init__(
        self,
        eval_env: str | VecEnv | None = None,
        eval_freq: int = EvalConfig.freq,
        n_eval_episodes: int = EvalConfig.n_episodes,
        log_dir: str | os.PathLike[str] | None = None,
        eval_seed: int = EvalConfig.seed,
        max_episode_steps: int | None = None,
        success_thresholds: Sequence[float] = (0.8,),
        eval_at_start: bool = False,
        env_kwargs: dict[str, Any] | None = None,
        callback_after_eval: BaseCallback | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(callback_after_eval, verbose=verbose)
        if eval_freq <= 0 or n_eval_episodes <= 0:  # named as this callback names them
            raise ValueError(
                f"eval_freq and n_eval_episodes must be positive, got {eval_freq} and {n_eval_episodes}."
            )
        self.evaluation = EvalConfig(
            seed=eval_seed, n_episodes=n_eval_episodes, freq=eval_freq, max_episode_steps=max_episode_steps
        )
        if any(not 0.0 < threshold <= 1.0 for threshold in success_thresholds):
            raise ValueError(f"success_thresholds must lie in (0, 1], got {list(success_thresholds)}.")
        self.eval_env_id = eval_env if isinstance(eval_env, str) or eval_env is None else vec_env_id(eval_env)
        if self.eval_env_id is not None:
            self.eval_env_id = minigrid_id(self.eval_env_id)
        self.eval_freq = eval_freq
        self.eval_seeds = self.evaluation.seeds
        self.max_episode_steps = max_episode_steps
        self.success_thresholds = tuple(sorted(success_thresholds))
        self.eval_at_start = eval_at_start
        self.env_kwargs = dict(env_kwargs or {})
        self.log_dir_setting = log_dir
        self.eval_dir = Path()
        self.obs_mode: ObsMode = DEFAULT_OBS_MODE
        self.next_eval = 0
        # time spent evaluating so far: wall clock, and CPU time of this process
        self.eval_seconds = 0.0
        self.eval_cpu_seconds = 0.0
        self.last_step: int | None = None
        self.first_step_reached: dict[str, dict[float, int]] = {kind: {} for kind in ACTION_KINDS}
        self.zoo_evaluations_path = Path(ZOO_EVALUATIONS_FILE)

    def _init_callback(self) -> None:
        super()._init_callback()
        if self.eval_env_id is None:
            self.eval_env_id = vec_env_id(self.training_env)
        self.obs_mode = obs_mode_of(self.eval_env_id, self.model.observation_space)
        self.eval_dir = resolve_log_dir(self, self.log_dir_setting) / EVAL_LOGS_DIR
        self.eval_dir.mkdir(parents=True, exist_ok=True)
        self.zoo_evaluations_path = self.eval_dir.parent / ZOO_EVALUATIONS_FILE

    def _on_training_start(self) -> None:
        self.next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        if self.eval_at_start and self.last_step != self.num_timesteps:
            self.evaluate()

    def _on_step(self) -> bool:
        if self.num_timesteps < self.next_eval:
            return True
        self.next_eval = (self.num_timesteps // self.eval_freq + 1) * self.eval_freq
        self.evaluate()
        return self._on_event()

    def evaluate(self) -> tuple[EvaluationResult, EvaluationResult]:
        """
        Evaluate now, log the figures and write the files.

        :return: the greedy and the sampled results
        """
        assert self.eval_env_id is not None, "evaluate() runs once the callback is initialised"
        start, start_cpu = time.perf_counter(), time.process_time()
        step = self.num_timesteps
        settings: dict[str, Any] = {
            "obs_mode": self.obs_mode,
            "max_episode_steps": self.max_episode_steps,
            "env_kwargs": self.env_kwargs,
        }
        greedy = evaluate_success(
            self.model, self.eval_env_id, self.eval_seeds, deterministic=True, **settings
        )
        with th.random.fork_rng(devices=[]):
            th.manual_seed(self.eval_seeds[0] + step)
            sampled = evaluate_success(
                self.model, self.eval_env_id, self.eval_seeds, deterministic=False, **settings
            )
        seconds = time.perf_counter() - start
        self.eval_seconds += seconds
        self.eval_cpu_seconds += time.process_time() - start_cpu
        self.last_step = step
        EvaluationArrays.from_results(step, greedy, sampled).to_npz(self.eval_dir / eval_file_name(step))
        self._write_zoo_evaluations()
        self._append_csv(step, greedy, sampled, seconds)
        self._update_thresholds(step, {"greedy": greedy.success_rate, "sampled": sampled.success_rate})
        self._record(greedy, sampled)
        if self.verbose >= 1:
            logger.info(
                "step %d: success %.2f greedy, %.2f sampled; return %.3f greedy, %.3f sampled (%.1f s)",
                step,
                greedy.success_rate,
                sampled.success_rate,
                greedy.mean_return,
                sampled.mean_return,
                seconds,
            )
        return greedy, sampled

    def _record(self, greedy: EvaluationResult, sampled: EvaluationResult) -> None:
        # Our own namespace: SB3's EvalCallback (and rl-zoo3's) writes eval/*, often in the same run.
        for kind, result in (("greedy", greedy), ("sampled", sampled)):
            self.logger.record(f"{TB_NAMESPACE}/success_rate_{kind}", result.success_rate)
            self.logger.record(f"{TB_NAMESPACE}/mean_reward_{kind}", result.mean_return)
            self.logger.record(f"{TB_NAMESPACE}/mean_ep_length_{kind}", result.mean_length)
        self.logger.record("time/total_timesteps", self.num_timesteps, exclude="tensorboard")
        self.logger.dump(self.num_timesteps)

    def _write_zoo_evaluations(self) -> None:
        """Rewrite ``evaluations.npz`` (SB3 ``EvalCallback``'s layout) from every evaluation file so far."""
        history = zoo_evaluations(self.eval_dir)
        path = self.zoo_evaluations_path
        if path.parent != self.eval_dir and not is_ours(path):
            logger.warning(
                "%s is another writer's (rl-zoo3's EvalCallback?): writing the plugin's evaluations to %s.",
                path,
                self.eval_dir / ZOO_EVALUATIONS_FILE,
            )
            path = self.zoo_evaluations_path = self.eval_dir / ZOO_EVALUATIONS_FILE
        np.savez(path, **history)  # type: ignore[arg-type]

    def _append_csv(
        self, step: int, greedy: EvaluationResult, sampled: EvaluationResult, seconds: float
    ) -> None:
        path = self.eval_dir / EVALUATIONS_CSV
        new_file = not path.exists() or path.stat().st_size == 0
        with path.open("a", newline="") as file:
            writer = csv.writer(file)
            if new_file:
                writer.writerow(CSV_COLUMNS)
            writer.writerow(
                [
                    step,
                    greedy.success_rate,
                    sampled.success_rate,
                    greedy.mean_return,
                    sampled.mean_return,
                    greedy.mean_length,
                    sampled.mean_length,
                    round(seconds, 3),
                ]
            )

    def _update_thresholds(self, step: int, success_rates: dict[str, float]) -> None:
        changed = False
        for kind, rate in success_rates.items():
            for threshold in self.success_thresholds:
                if rate >= threshold and threshold not in self.first_step_reached[kind]:
                    self.first_step_reached[kind][threshold] = step
                    self.logger.record(f"{TB_NAMESPACE}/first_step_success_{threshold:g}_{kind}", step)
                    changed = True
        if changed:
            serialisable = {
                kind: {f"{threshold:g}": reached for threshold, reached in steps.items()}
                for kind, steps in self.first_step_reached.items()
            }
            write_text_atomic(self.eval_dir / THRESHOLDS_FILE, json.dumps(serialisable, indent=2) + "\n")
