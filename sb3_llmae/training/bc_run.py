"""The machinery of one behaviour-cloning run: its checkpoints and report (``BCCheckpoint``,
``BCReport``), scoring on the demonstrations, the training loop with its evaluations, the step back
to refine a jump past the success threshold, the best weights kept, and the ``bc/*`` figures.
:func:`~sb3_llmae.training.bc.pretrain_bc` drives it."""

from __future__ import annotations

import copy
import logging
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch as th
from imitation.algorithms.bc import BC
from imitation.data.types import Transitions, transitions_collate_fn
from imitation.util.logger import HierarchicalLogger
from stable_baselines3.common.logger import Logger
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from sb3_llmae.demonstrations.containers import Demonstrations
from sb3_llmae.training.config import BCConfig, EvalConfig
from sb3_llmae.training.critic import ActorCritic
from sb3_llmae.training.evaluation import evaluate_success
from sb3_llmae.training.soft_bc import train_soft_targets

logger = logging.getLogger(__name__)


# Observations per forward pass when scoring the policy on all demonstrations.
SCORING_BATCH_SIZE = 4096


@dataclass(frozen=True)
class BCCheckpoint:
    """
    The policy after some epochs of behaviour cloning.

    :param epoch: epochs trained so far (fractional for the finer evaluations near the threshold)
    :param loss: mean negative log-likelihood of the expert's actions
    :param accuracy: fraction of demonstration steps where the greedy action is the expert's
    :param success_rate: greedy success rate on the evaluation env (``None``: not evaluated)
    """

    epoch: float
    loss: float
    accuracy: float
    success_rate: float | None


@dataclass(frozen=True)
class BCReport:
    """
    What behaviour cloning did.

    :param epochs: epochs behind the weights kept
    :param loss: mean negative log-likelihood of the expert's actions under the weights kept (before
        any entropy cap)
    :param accuracy: fraction of demonstration steps where the greedy action of the weights kept is the
        expert's
    :param success_rate: greedy success rate of the weights kept on the evaluation env (``None``: not
        evaluated)
    :param stopped_early: whether the success threshold or ``patience`` ended training before the
        epoch budget
    :param history: one checkpoint per evaluation, in the order trained
    :param refined_from: when success jumped past ``stop_at_success`` between two evaluations, the
        checkpoint that jumped; training went back and measured that interval more finely, and the
        weights kept are the first to reach the threshold there (``None``: no such step back)
    :param best_of: with ``keep_best``, the last evaluation when an earlier one had a better greedy
        success rate and its weights were kept instead (``None``: the last weights were kept)
    :param logit_scale: factor the action logits were scaled by to meet ``max_entropy`` (1.0: none)
    :param entropy: mean entropy (nats) of the action distribution on the demonstrations' states, as
        kept (after the cap)
    """

    epochs: float
    loss: float
    accuracy: float
    success_rate: float | None
    stopped_early: bool
    history: tuple[BCCheckpoint, ...]
    refined_from: BCCheckpoint | None = None
    best_of: BCCheckpoint | None = None
    logit_scale: float = 1.0
    entropy: float | None = None


def score_on_demonstrations(policy: ActorCritic, transitions: Transitions) -> tuple[float, float]:
    """
    :param policy: the policy
    :param transitions: the expert's observations and actions
    :return: mean negative log-likelihood of the expert's actions, and the fraction of steps where the
        policy's greedy action is the expert's
    """
    total_neglogp = 0.0
    agreements = 0
    with th.no_grad():
        for start in range(0, len(transitions), SCORING_BATCH_SIZE):
            obs, _ = policy.obs_to_tensor(np.asarray(transitions.obs[start : start + SCORING_BATCH_SIZE]))
            acts = th.tensor(transitions.acts[start : start + SCORING_BATCH_SIZE], device=policy.device)
            distribution = policy.get_distribution(obs)
            total_neglogp -= float(distribution.log_prob(acts).sum())
            agreements += int((distribution.mode() == acts).sum())
    return total_neglogp / len(transitions), agreements / len(transitions)


def _silent_imitation_logger() -> HierarchicalLogger:
    # imitation's default logger prints to stdout and writes to a temp dir; BC's per-batch figures
    # are not needed here, the report and the checkpoints say what matters.
    return HierarchicalLogger(Logger(folder=None, output_formats=[]), format_strs=[])


def reached(checkpoint: BCCheckpoint, stop_at_success: float | None) -> bool:
    """
    :param checkpoint: a checkpoint
    :param stop_at_success: the success threshold (``None``: none)
    :return: whether the checkpoint's greedy success rate reaches the threshold
    """
    return (
        stop_at_success is not None
        and checkpoint.success_rate is not None
        and checkpoint.success_rate >= stop_at_success
    )


Snapshot = tuple[dict[str, Any], dict[str, Any]]


class _BCRun:
    """
    One behaviour-cloning run: training steps, checkpoints, snapshots to go back to, the progress bar.

    :param policy: the policy to train
    :param demos: the demonstrations, checked to fit it
    :param config: the BC settings
    :param evaluation: how success is measured
    :param measured_on: the env id success is measured on (``None``: not measured)
    :param sb3_logger: where ``bc/*`` figures go
    :param env_step: the model's env steps so far, where the ``bc/*`` figures sit on the x-axis
    """

    def __init__(
        self,
        policy: ActorCritic,
        demos: Demonstrations,
        config: BCConfig,
        evaluation: EvalConfig,
        measured_on: str | None,
        sb3_logger: Logger | None,
        env_step: int = 0,
    ) -> None:
        self.policy = policy
        self.demos = demos
        self.transitions = demos.transitions
        self.config = config
        self.evaluation = evaluation
        self.measured_on = measured_on
        self.sb3_logger = sb3_logger
        self.env_step = env_step
        # what the bar's postfix says while an interval is trained again in parts (None: not refining)
        self.refining: str | None = None
        self.history: list[BCCheckpoint] = []
        # The evaluation with the best greedy success rate so far, and its weights.
        self.best: BCCheckpoint | None = None
        self.best_weights: dict[str, Any] | None = None
        self.bar = tqdm(disable=True)
        batches = DataLoader(
            self.transitions,
            batch_size=config.batch_size,
            shuffle=True,
            drop_last=True,
            collate_fn=transitions_collate_fn,
            generator=th.Generator().manual_seed(config.seed),
        )
        self.batches_per_epoch = len(batches)
        self.soft_targets = demos.soft_targets() if config.soft_targets else None
        if config.soft_targets and self.soft_targets is None:
            raise ValueError(
                "BCConfig.soft_targets needs demonstrations with the teacher's action distributions "
                "(generate --expert llm --decision logprobs); these have none: drop soft_targets "
                "(--soft-targets) to clone the actions."
            )
        self.soft_rng = np.random.default_rng(config.seed)
        self.bc = BC(
            observation_space=policy.observation_space,
            action_space=policy.action_space,
            rng=np.random.default_rng(config.seed),
            # imitation types it as ActorCriticPolicy; it only calls what MaskableActorCriticPolicy also has
            policy=policy,  # type: ignore[arg-type]
            demonstrations=batches,
            batch_size=config.batch_size,
            optimizer_kwargs={"lr": config.learning_rate},
            ent_weight=config.ent_weight,
            l2_weight=config.l2_weight,
            device=policy.device,
            custom_logger=_silent_imitation_logger(),
        )

    def run(self) -> tuple[bool, BCCheckpoint | None]:
        """
        Train up to ``config.epochs``, measuring every ``config.eval_every`` epochs.

        :return: whether the success threshold or ``patience`` stopped training early, and the
            checkpoint that jumped past the threshold when the interval was refined (``None``: none)
        """
        epochs, stop_at_success = self.config.epochs, self.config.stop_at_success
        refine = stop_at_success is not None and self.config.refine_chunks > 1
        epochs_done = 0
        evaluations_without_progress = 0
        while epochs_done < epochs:
            n_epochs = min(self.config.eval_every, epochs - epochs_done)
            before = self.snapshot() if refine else None
            self.train(n_epochs=n_epochs)
            checkpoint = self.measure(epochs_done + n_epochs)
            if not reached(checkpoint, stop_at_success):
                self.history.append(checkpoint)
                epochs_done += n_epochs
                if self.note_if_best(checkpoint):
                    evaluations_without_progress = 0
                elif checkpoint.success_rate is not None:
                    evaluations_without_progress += 1
                    if (
                        self.config.patience is not None
                        and evaluations_without_progress >= self.config.patience
                    ):
                        return epochs_done < epochs, None
                continue
            refined_from = None
            if before is not None and checkpoint.success_rate != stop_at_success:
                refined_from = checkpoint
                self.refine(before, checkpoint, epochs_done, n_epochs)
            else:
                self.history.append(checkpoint)
            return epochs_done + n_epochs < epochs, refined_from
        return False, None

    def note_if_best(self, checkpoint: BCCheckpoint) -> bool:
        """
        Keep the current weights aside when their greedy success rate is the best so far (the latest of
        equals).

        :param checkpoint: the checkpoint just measured, of the current weights
        :return: whether its greedy success rate beats every earlier one (a tie is no progress)
        """
        if checkpoint.success_rate is None:
            return False
        best_rate = None if self.best is None else self.best.success_rate
        if best_rate is not None and checkpoint.success_rate < best_rate:
            return False
        self.best = checkpoint
        self.best_weights = copy.deepcopy(self.policy.state_dict()) if self.config.keep_best else None
        return best_rate is None or checkpoint.success_rate > best_rate

    def keep_best(self) -> tuple[BCCheckpoint, BCCheckpoint | None]:
        """
        End with the weights of the best evaluation, when an earlier one beat the last.

        :return: the checkpoint of the weights kept, and the last one when those are the best's
            (else ``None``)
        """
        last = self.history[-1]
        best = self.best
        if (
            best is None
            or self.best_weights is None
            or best is last
            # the threshold reached (or a refined crossing), which no earlier evaluation did
            or (last.success_rate is not None and last.success_rate >= (best.success_rate or 0.0))
        ):
            return last, None
        self.policy.load_state_dict(self.best_weights)
        return best, last

    def train(self, n_epochs: int | None = None, n_batches: int | None = None) -> None:
        self.policy.set_training_mode(True)
        with warnings.catch_warnings():
            # imitation logs its first batch's loss with float() on a tensor that requires grad
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
            if self.soft_targets is None:
                self.bc.train(n_epochs=n_epochs, n_batches=n_batches, progress_bar=False)
                return
            train_soft_targets(
                self.policy,  # type: ignore[arg-type]
                self.bc.optimizer,
                np.asarray(self.transitions.obs),
                self.soft_targets,
                self.config.batch_size,
                self.soft_rng,
                n_epochs=n_epochs,
                n_batches=n_batches,
                ent_weight=self.config.ent_weight,
                l2_weight=self.config.l2_weight,
            )

    def measure(self, epoch: float) -> BCCheckpoint:
        loss, accuracy = score_on_demonstrations(self.policy, self.transitions)
        success_rate = None
        if self.measured_on is not None:
            success_rate = evaluate_success(
                self.policy,
                self.measured_on,
                self.evaluation.seeds,
                obs_mode=self.demos.obs_mode,
                max_episode_steps=self.evaluation.max_episode_steps,
                env_kwargs=self.demos.metadata.get("env_kwargs")
                if self.measured_on == self.demos.env_id
                else None,
            ).success_rate
        logger.debug("BC epoch %g: loss %.3f, accuracy %.3f, success %s", epoch, loss, accuracy, success_rate)
        checkpoint = BCCheckpoint(epoch=epoch, loss=loss, accuracy=accuracy, success_rate=success_rate)
        _record(
            checkpoint, self.sb3_logger, self.env_step, gradient_steps=round(epoch * self.batches_per_epoch)
        )
        # Never backwards: a refined interval is trained again below the bar's mark, and says so.
        self.bar.n = max(self.bar.n, round(epoch, 2))
        postfix = {"loss": f"{checkpoint.loss:.3f}", "accuracy": f"{checkpoint.accuracy:.0%}"}
        if self.refining is not None:
            postfix["refining"] = f"{self.refining}, at epoch {epoch:g}"
        if checkpoint.success_rate is not None:
            postfix["greedy success"] = f"{checkpoint.success_rate:.0%}"
        self.bar.set_postfix(postfix, refresh=True)
        return checkpoint

    def snapshot(self) -> Snapshot:
        return copy.deepcopy(self.policy.state_dict()), copy.deepcopy(self.bc.optimizer.state_dict())

    def restore(self, snapshot: Snapshot) -> None:
        self.policy.load_state_dict(snapshot[0])
        self.bc.optimizer.load_state_dict(snapshot[1])

    def refine(self, before: Snapshot, crossing: BCCheckpoint, epochs_done: int, n_epochs: int) -> None:
        """
        Go back to before the interval in which success crossed the threshold and train it again in
        ``refine_chunks`` parts, measuring after each, so that training stops closer above the
        threshold. The weights kept are those of the first part that reaches it, or the crossing's own
        if none does (the batches are shuffled anew).
        """
        chunks = self.config.refine_chunks
        after = self.snapshot()
        self.restore(before)
        batches = max(1, n_epochs * self.batches_per_epoch // chunks)
        for part in range(1, chunks + 1):
            self.refining = f"epochs {epochs_done}-{epochs_done + n_epochs} again, part {part}/{chunks}"
            self.train(n_batches=batches)
            checkpoint = self.measure(epochs_done + n_epochs * part / chunks)
            self.history.append(checkpoint)
            if reached(checkpoint, self.config.stop_at_success):
                self.refining = None
                return
        self.refining = None
        self.restore(after)
        self.history.append(crossing)


def _record(checkpoint: BCCheckpoint, sb3_logger: Logger | None, env_step: int, gradient_steps: int) -> None:
    # On the env-step axis of the run (where BC takes none, so every figure sits at env_step); BC's own
    # progress is bc/epoch and bc/gradient_steps (TensorBoard's "relative" x-axis draws them in order).
    if sb3_logger is None:
        return
    sb3_logger.record("bc/epoch", checkpoint.epoch)
    sb3_logger.record("bc/gradient_steps", gradient_steps)
    sb3_logger.record("bc/loss", checkpoint.loss)
    sb3_logger.record("bc/accuracy", checkpoint.accuracy)
    if checkpoint.success_rate is not None:
        sb3_logger.record("bc/success_rate", checkpoint.success_rate)
    sb3_logger.dump(step=env_step)
