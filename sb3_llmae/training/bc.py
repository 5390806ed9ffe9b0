"""Behaviour cloning (imitation's BC) of demonstrations into an SB3 actor-critic policy, in place."""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch as th
from imitation.algorithms.bc import BC
from imitation.data.types import Transitions, transitions_collate_fn
from imitation.util.logger import HierarchicalLogger
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from torch.utils.data import DataLoader

from sb3_llmae.demonstrations.containers import Demonstrations
from sb3_llmae.demonstrations.storage import load_demonstrations
from sb3_llmae.training.critic import ActorCritic
from sb3_llmae.training.evaluation import evaluate_success

logger = logging.getLogger(__name__)

# Observations per forward pass when scoring the policy on all demonstrations.
SCORING_BATCH_SIZE = 4096


@dataclass(frozen=True)
class BCCheckpoint:
    """
    The policy after some epochs of behaviour cloning.

    :param epoch: epochs trained so far
    :param loss: mean negative log-likelihood of the expert's actions
    :param accuracy: fraction of demonstration steps where the greedy action is the expert's
    :param success_rate: greedy success rate on the evaluation env (``None``: not evaluated)
    """

    epoch: int
    loss: float
    accuracy: float
    success_rate: float | None


@dataclass(frozen=True)
class BCReport:
    """
    What behaviour cloning did.

    :param epochs: epochs trained
    :param loss: final mean negative log-likelihood of the expert's actions
    :param accuracy: final fraction of demonstration steps where the greedy action is the expert's
    :param success_rate: final greedy success rate on the evaluation env (``None``: not evaluated)
    :param stopped_early: whether the success threshold ended training before the epoch budget
    :param history: one checkpoint per evaluation, in order
    """

    epochs: int
    loss: float
    accuracy: float
    success_rate: float | None
    stopped_early: bool
    history: tuple[BCCheckpoint, ...]


def as_demonstrations(
    demonstrations: Demonstrations | str | os.PathLike[str], policy: BasePolicy
) -> Demonstrations:
    """
    :param demonstrations: demonstrations, or the directory they were saved in
    :param policy: the policy to train on them
    :return: the demonstrations, checked to fit the policy's observation space
    :raises ValueError: naming both spaces if they do not fit
    """
    if not isinstance(demonstrations, Demonstrations):
        demonstrations = load_demonstrations(demonstrations)
    demonstrations.check_observation_space(policy.observation_space)
    return demonstrations


def actor_critic_policy(policy_or_model: BaseAlgorithm | ActorCritic) -> ActorCritic:
    """
    :param policy_or_model: an SB3 model or its policy
    :return: the policy object itself (never a copy): a feed-forward ``ActorCriticPolicy`` (PPO, A2C)
        or sb3-contrib's ``MaskableActorCriticPolicy`` (``MaskablePPO``; BC fits its unmasked action
        distribution, whose greedy action is the expert's wherever the expert's action is valid)
    :raises TypeError: for other policies, and for recurrent ones (``RecurrentPPO``): BC here learns
        from single transitions, so it cannot train an LSTM, which needs whole demonstration sequences
    """
    policy = policy_or_model.policy if isinstance(policy_or_model, BaseAlgorithm) else policy_or_model
    if isinstance(policy, RecurrentActorCriticPolicy):
        raise TypeError(
            "Behaviour cloning into a recurrent policy (RecurrentPPO's RecurrentActorCriticPolicy) is not "
            "supported: BC trains on shuffled single transitions, while an LSTM must be trained on whole "
            "demonstration sequences. Use PPO or MaskablePPO for an LLM-initialised model."
        )
    if not isinstance(policy, ActorCriticPolicy | MaskableActorCriticPolicy):
        raise TypeError(
            "Behaviour cloning needs an ActorCriticPolicy (as used by PPO / A2C) or a "
            f"MaskableActorCriticPolicy (MaskablePPO), got {type(policy).__name__}."
        )
    return policy


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


def pretrain_bc(
    policy_or_model: BaseAlgorithm | ActorCriticPolicy,
    demonstrations: Demonstrations | str | os.PathLike[str],
    *,
    epochs: int = 100,
    batch_size: int = 32,
    learning_rate: float = 1e-4,
    ent_weight: float = 1e-3,
    l2_weight: float = 0.0,
    stop_at_success: float | None = None,
    eval_env: str | None = None,
    eval_every: int = 2,
    eval_episodes: int = 20,
    eval_seed: int = 1_000_000,
    eval_max_episode_steps: int | None = None,
    seed: int = 0,
    sb3_logger: Logger | None = None,
) -> BCReport:
    """
    Behaviour-clone demonstrations into a policy with ``imitation.algorithms.bc.BC``, in place.

    The policy trained is the model's own policy object, so a PPO model continues from exactly
    these weights. BC only moves the policy path (features, actor MLP, action head): the value
    head gets no gradient from the BC loss.

    With ``stop_at_success``, training stops at the first evaluation where the greedy success rate
    reaches it: a prior that imitates the expert too confidently explores too little for PPO to
    improve on it (the reference stops at 0.15).

    :param policy_or_model: an SB3 model with an ``ActorCriticPolicy`` (PPO, A2C) or the policy
    :param demonstrations: demonstrations, or the directory they were saved in
    :param epochs: largest number of passes over the demonstrations
    :param batch_size: transitions per gradient step
    :param learning_rate: Adam's learning rate
    :param ent_weight: weight of the entropy bonus in the BC loss
    :param l2_weight: weight of the L2 penalty on all the policy's parameters
    :param stop_at_success: stop once the greedy success rate reaches this (``None``: run every epoch)
    :param eval_env: env id the success rate is measured on; defaults to the demonstrations' env when
        ``stop_at_success`` is given (``None`` and no threshold: success is not measured)
    :param eval_every: epochs between evaluations
    :param eval_episodes: episodes per evaluation, on seeds ``eval_seed, eval_seed + 1, ...``
    :param eval_seed: first evaluation seed; keep the seeds apart from the demonstrations' seeds,
        or the success rate says how well the policy memorised them
    :param eval_max_episode_steps: step limit of evaluation episodes; ``None`` keeps the env's own
    :param seed: seed of the order in which demonstrations are batched
    :param sb3_logger: where to record ``bc/*`` figures at each evaluation (e.g. ``model.logger``)
    :return: the report
    :raises ValueError: if the demonstrations' observations do not fit the policy, or the
        arguments are inconsistent
    :raises TypeError: if the policy is not an ``ActorCriticPolicy``
    """
    policy = actor_critic_policy(policy_or_model)
    demos = as_demonstrations(demonstrations, policy)
    transitions = demos.transitions
    if epochs <= 0 or eval_every <= 0 or eval_episodes <= 0:
        raise ValueError(
            "epochs, eval_every and eval_episodes must be positive, "
            f"got {epochs}, {eval_every}, {eval_episodes}."
        )
    if len(transitions) < batch_size:
        raise ValueError(
            f"The demonstrations hold {len(transitions)} transitions, fewer than batch_size={batch_size}: "
            "lower batch_size or generate more episodes."
        )
    if stop_at_success is not None and eval_env is None:
        eval_env = demos.env_id
    eval_seeds = list(range(eval_seed, eval_seed + eval_episodes))
    if eval_env is not None:
        overlap = set(eval_seeds) & set(demos.metadata.get("kept_seeds", []))
        if overlap:
            logger.warning(
                "%d evaluation seeds are also demonstration seeds: the success rate is optimistic.",
                len(overlap),
            )

    batches = DataLoader(
        transitions,
        batch_size=batch_size,
        shuffle=True,
        drop_last=True,
        collate_fn=transitions_collate_fn,
        generator=th.Generator().manual_seed(seed),
    )
    bc = BC(
        observation_space=policy.observation_space,
        action_space=policy.action_space,
        rng=np.random.default_rng(seed),
        # imitation types it as ActorCriticPolicy; it only calls what MaskableActorCriticPolicy also has
        policy=policy,  # type: ignore[arg-type]
        demonstrations=batches,
        batch_size=batch_size,
        optimizer_kwargs={"lr": learning_rate},
        ent_weight=ent_weight,
        l2_weight=l2_weight,
        device=policy.device,
        custom_logger=_silent_imitation_logger(),
    )

    history: list[BCCheckpoint] = []
    stopped_early = False
    epochs_done = 0
    while epochs_done < epochs:
        n_epochs = min(eval_every, epochs - epochs_done)
        policy.set_training_mode(True)
        with warnings.catch_warnings():
            # imitation logs its first batch's loss with float() on a tensor that requires grad
            warnings.filterwarnings("ignore", message="Converting a tensor with requires_grad=True")
            bc.train(n_epochs=n_epochs, progress_bar=False)
        epochs_done += n_epochs
        checkpoint = _checkpoint(
            policy, transitions, epochs_done, eval_env, eval_seeds, demos, eval_max_episode_steps
        )
        history.append(checkpoint)
        _record(checkpoint, sb3_logger)
        if (
            stop_at_success is not None
            and checkpoint.success_rate is not None
            and checkpoint.success_rate >= stop_at_success
        ):
            stopped_early = epochs_done < epochs
            break
    policy.set_training_mode(False)
    final = history[-1]
    logger.info(
        "BC: %d epochs, loss %.3f, accuracy %.1f%%, greedy success %s%s.",
        final.epoch,
        final.loss,
        100 * final.accuracy,
        "not measured" if final.success_rate is None else f"{final.success_rate:.0%}",
        f" (stopped at the threshold {stop_at_success})" if stopped_early else "",
    )
    return BCReport(
        epochs=final.epoch,
        loss=final.loss,
        accuracy=final.accuracy,
        success_rate=final.success_rate,
        stopped_early=stopped_early,
        history=tuple(history),
    )


def _checkpoint(
    policy: ActorCritic,
    transitions: Transitions,
    epoch: int,
    eval_env: str | None,
    eval_seeds: Sequence[int],
    demos: Demonstrations,
    max_episode_steps: int | None,
) -> BCCheckpoint:
    loss, accuracy = score_on_demonstrations(policy, transitions)
    success_rate = None
    if eval_env is not None:
        success_rate = evaluate_success(
            policy,
            eval_env,
            eval_seeds,
            obs_mode=demos.obs_mode,
            max_episode_steps=max_episode_steps,
            env_kwargs=demos.metadata.get("env_kwargs") if eval_env == demos.env_id else None,
        ).success_rate
    logger.debug("BC epoch %d: loss %.3f, accuracy %.3f, success %s", epoch, loss, accuracy, success_rate)
    return BCCheckpoint(epoch=epoch, loss=loss, accuracy=accuracy, success_rate=success_rate)


def _record(checkpoint: BCCheckpoint, sb3_logger: Logger | None) -> None:
    if sb3_logger is None:
        return
    sb3_logger.record("bc/loss", checkpoint.loss)
    sb3_logger.record("bc/accuracy", checkpoint.accuracy)
    if checkpoint.success_rate is not None:
        sb3_logger.record("bc/success_rate", checkpoint.success_rate)
    sb3_logger.dump(step=checkpoint.epoch)
