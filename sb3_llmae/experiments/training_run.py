"""One run of a comparison: one method on one seed, trained in its own folder, resumable.

The folder's layout is :mod:`sb3_llmae.run_layout`'s; its life (claiming, result, error) is
:mod:`~sb3_llmae.experiments.run_folder`'s; the model is built or loaded by
:mod:`~sb3_llmae.experiments.models`.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList, CheckpointCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_llmae.experiments.models import build_model, load_checkpoint
from sb3_llmae.experiments.run_folder import (
    OtherRunError,
    claim_run_dir,
    is_finished,
    latest_checkpoint,
    read_result,
    write_error,
    write_result,
)
from sb3_llmae.experiments.specs import ProgressFn, RunOutcome, RunSpec
from sb3_llmae.run_layout import CHECKPOINT_PREFIX, CHECKPOINTS_DIR, MODEL_FILE, TENSORBOARD_DIR
from sb3_llmae.training.callbacks import SampleEfficiencyCallback, VisitationHeatmapCallback
from sb3_llmae.training.evaluation import EvaluationResult

logger = logging.getLogger(__name__)


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


def train_run(spec: RunSpec, progress: ProgressFn | None = None) -> RunOutcome:
    """
    Train one run to ``settings.steps`` env steps in its folder, or skip it if it finished before.

    Evaluations, heatmaps and checkpoints every so many env steps (see
    :class:`~sb3_llmae.experiments.specs.CompareSettings`); an interrupted run continues from its
    latest checkpoint. Any error is caught, written to the run's ``error.txt`` and returned as a failed
    outcome, so that one run cannot stop the others.

    :param spec: the run
    :param progress: called after each rollout with the steps so far and the last greedy success rate
    :return: the outcome
    """
    start = time.perf_counter()
    if is_finished(spec):
        return RunOutcome(spec.key, "skipped", spec.run_dir, result=read_result(spec.run_dir))
    try:
        th.set_num_threads(1)
        claim_run_dir(spec)
        result = _train(spec, progress)
    except OtherRunError as error:  # the folder is another run's: leave it as it is, no error.txt
        return RunOutcome(
            spec.key, "failed", spec.run_dir, seconds=time.perf_counter() - start, error=str(error)
        )
    except Exception as error:  # one failing run must not stop the others: report it and go on
        write_error(spec.run_dir)
        logger.error("%s failed: %s", spec.key, error)
        return RunOutcome(
            spec.key,
            "failed",
            spec.run_dir,
            seconds=time.perf_counter() - start,
            error=f"{type(error).__name__}: {error}",
        )
    return RunOutcome(spec.key, "finished", spec.run_dir, seconds=time.perf_counter() - start, result=result)


def run_callbacks(spec: RunSpec, resumed: bool) -> tuple[RunEvaluations, list[BaseCallback]]:
    """
    :param spec: a run
    :param resumed: whether it continues from a checkpoint
    :return: its evaluation callback, and every callback of its training (that one first)
    """
    settings, run_dir = spec.settings, spec.run_dir
    evaluation = settings.evaluation
    evaluations = RunEvaluations(
        settings.env_id,
        eval_freq=evaluation.freq,
        n_eval_episodes=evaluation.n_episodes,
        log_dir=run_dir,
        eval_seed=evaluation.seed,
        max_episode_steps=settings.eval_max_episode_steps,
        # the starting point (a BC prior, a transferred policy) is part of the curve; a resumed run has it
        eval_at_start=not resumed,
    )
    checkpoint_freq = settings.checkpoint_freq or evaluation.freq
    return evaluations, [
        evaluations,
        VisitationHeatmapCallback(save_freq=settings.heatmap_freq or evaluation.freq, log_dir=run_dir),
        CheckpointCallback(
            save_freq=max(checkpoint_freq // spec.n_envs, 1),
            save_path=str(run_dir / CHECKPOINTS_DIR),
            name_prefix=CHECKPOINT_PREFIX,
        ),
    ]


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
    evaluations, callbacks = run_callbacks(spec, resumed=checkpoint is not None)
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
    _evaluate_last_step(model, evaluations, settings.steps, ran=remaining > 0)
    model.save(run_dir / MODEL_FILE)
    result = {
        "env_steps": int(model.num_timesteps),
        "seconds": round(time.perf_counter() - start, 1),
        "resumed_from": None if checkpoint is None else checkpoint[0],
        "final_success_greedy": evaluations.last_success_greedy,
        "final_success_sampled": evaluations.last_success_sampled,
    }
    write_result(run_dir, result)
    if progress is not None:
        progress(int(model.num_timesteps), evaluations.last_success_greedy)
    return result


def _evaluate_last_step(model: OnPolicyAlgorithm, evaluations: RunEvaluations, steps: int, ran: bool) -> None:
    """The final score is read at the last evaluation: evaluate at the end unless one was at ``steps``."""
    if evaluations.last_step is not None and evaluations.last_step >= steps:
        return
    if not ran:  # learn() never ran (the warm-up already took every step): set the callback up
        evaluations.init_callback(model)
        evaluations.num_timesteps = model.num_timesteps
    evaluations.evaluate()
