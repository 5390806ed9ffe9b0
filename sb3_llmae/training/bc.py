"""Behaviour cloning (imitation's BC) of demonstrations into an SB3 actor-critic policy, in place: the
entry point :func:`pretrain_bc`, with the checks of the policy and the demonstrations it trains on. The
run itself (training loop, checkpoints, report) lives in :mod:`sb3_llmae.training.bc_run`."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from sb3_contrib.common.recurrent.policies import RecurrentActorCriticPolicy
from stable_baselines3.common.base_class import BaseAlgorithm
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.policies import ActorCriticPolicy, BasePolicy
from tqdm.auto import tqdm

from sb3_llmae.demonstrations.containers import Demonstrations
from sb3_llmae.demonstrations.storage import load_demonstrations
from sb3_llmae.envs import env_id_of
from sb3_llmae.training.bc_run import (
    SCORING_BATCH_SIZE,
    BCCheckpoint,
    BCReport,
    _BCRun,
    reached,
    score_on_demonstrations,
)
from sb3_llmae.training.config import BC_EVALUATION, BCConfig, EvalConfig, split_bc_settings
from sb3_llmae.training.critic import ActorCritic
from sb3_llmae.training.temperature import cap_action_entropy, mean_action_entropy

__all__ = [
    "SCORING_BATCH_SIZE",
    "BCCheckpoint",
    "BCReport",
    "actor_critic_policy",
    "as_demonstrations",
    "pretrain_bc",
    "reached",
    "score_on_demonstrations",
]

logger = logging.getLogger(__name__)


def as_demonstrations(
    demonstrations: Demonstrations | str | os.PathLike[str], policy: BasePolicy
) -> Demonstrations:
    """
    :param demonstrations: demonstrations, or the directory they were saved in
    :param policy: the policy to train on them
    :return: the demonstrations, checked to fit the policy's observation space, with every observation
        inside it and every action in the policy's action space
    :raises ValueError: naming both spaces if they do not fit, or the first bad transition
    """
    if not isinstance(demonstrations, Demonstrations):
        demonstrations = load_demonstrations(demonstrations)
    demonstrations.check_observation_space(policy.observation_space)
    demonstrations.check_values(policy.observation_space, policy.action_space)
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


def pretrain_bc(
    policy_or_model: BaseAlgorithm | ActorCriticPolicy,
    demonstrations: Demonstrations | str | os.PathLike[str],
    config: BCConfig | Mapping[str, Any] | None = None,
    *,
    evaluation: EvalConfig | None = None,
    eval_env_id: str | None = None,
    sb3_logger: Logger | None = None,
    allow_env_mismatch: bool = False,
    progress_bar: bool = False,
) -> BCReport:
    """
    Behaviour-clone demonstrations into a policy with ``imitation.algorithms.bc.BC``, in place.

    The policy trained is the model's own policy object, so a PPO model continues from exactly
    these weights. BC only moves the policy path (features, actor MLP, action head): the value
    head gets no gradient from the BC loss.

    With ``config.stop_at_success``, training stops at the first evaluation where the greedy success
    rate reaches it (by default 1.0: fit until the greedy policy plays every held-out seed, on
    ``BC_EVALUATION``'s seeds). Success can jump past a lower threshold within ``eval_every`` epochs;
    then training goes back to the previous evaluation and repeats that interval in ``refine_chunks``
    parts, stopping at the first that reaches the threshold (``BCReport.refined_from`` keeps the
    checkpoint that jumped). With ``config.patience``, training also stops after that many evaluations
    without a better greedy success rate, and with ``config.keep_best`` the best evaluation's weights
    are kept: demonstrations with random detours (an LLM's) never reach the threshold, and fitting
    them longer makes the greedy policy worse.

    Then, with ``config.max_entropy``, the action head's logits are scaled up until the mean entropy
    on the demonstrations' states is at most that
    (:func:`~sb3_llmae.training.temperature.cap_action_entropy`): the greedy actions stay those BC
    chose, while PPO's sampled rollouts come closer to them, so that PPO meets and corrects the states
    where the greedy policy fails (measured in ``docs/measurements.md``).

    :param policy_or_model: an SB3 model with an ``ActorCriticPolicy`` (PPO, A2C) or the policy
    :param demonstrations: demonstrations, or the directory they were saved in
    :param config: the BC settings, or a mapping of their fields (``None``: the defaults of
        :class:`~sb3_llmae.training.config.BCConfig`)
    :param evaluation: how the greedy success rate is measured (seeds, episodes, step limit; ``None``:
        ``BC_EVALUATION``, 20 episodes on seeds apart from those training is reported on)
    :param eval_env_id: env id the success rate is measured on, at every evaluation; ``None``: measured
        only with ``stop_at_success``, on the model's env (or the demonstrations' env for a bare policy)
    :param sb3_logger: where to record ``bc/*`` figures at each evaluation (e.g. ``model.logger``)
    :param allow_env_mismatch: train on demonstrations of another env than the model's (or
        ``eval_env_id``); refused by default
    :param progress_bar: show a progress bar (epochs, loss, accuracy, last greedy success)
    :return: the report
    :raises ValueError: if the demonstrations come from another env, hold a bad transition, their
        observations do not fit the policy, or the settings are invalid
    :raises TypeError: if the policy is not an ``ActorCriticPolicy``
    """
    config, eval_fields, mapped_progress_bar = split_bc_settings(config)
    evaluation = dataclasses.replace(evaluation or BC_EVALUATION, **eval_fields)
    policy = actor_critic_policy(policy_or_model)
    demos = as_demonstrations(demonstrations, policy)
    model_env_id = (
        env_id_of(policy_or_model.get_env()) if isinstance(policy_or_model, BaseAlgorithm) else None
    )
    demos.check_env_id(eval_env_id or model_env_id, allow_env_mismatch)
    if len(demos.transitions) < config.batch_size:
        raise ValueError(
            f"The demonstrations hold {len(demos.transitions)} transitions, fewer than "
            f"batch_size={config.batch_size}: lower batch_size or generate more episodes."
        )
    # The one decision of where success is measured (None: nowhere).
    measured_on = eval_env_id
    if measured_on is None and config.stop_at_success is not None:
        measured_on = model_env_id or demos.env_id
    if measured_on is not None:
        overlap = set(evaluation.seeds) & set(demos.metadata.get("kept_seeds", []))
        if overlap:
            logger.warning(
                "%d evaluation seeds are also demonstration seeds: the success rate is optimistic.",
                len(overlap),
            )
    # BC takes no env step: its figures sit on the env-step axis at the model's steps so far.
    env_step = policy_or_model.num_timesteps if isinstance(policy_or_model, BaseAlgorithm) else 0
    run = _BCRun(policy, demos, config, evaluation, measured_on, sb3_logger, env_step)
    with tqdm(
        total=config.epochs,
        desc="BC",
        unit="epoch",
        disable=not (progress_bar or mapped_progress_bar),
        dynamic_ncols=True,
    ) as run.bar:
        stopped_early, refined_from = run.run()
        final, best_of = run.keep_best() if config.keep_best else (run.history[-1], None)
    policy.set_training_mode(False)
    logit_scale = 1.0
    if config.max_entropy is not None:
        logit_scale = cap_action_entropy(policy, np.asarray(demos.transitions.obs), config.max_entropy)
    entropy = mean_action_entropy(policy, np.asarray(demos.transitions.obs))
    logger.info(
        "BC: %g epochs, loss %.3f, accuracy %.1f%%, greedy success %s%s%s%s; action entropy %.2f nats%s.",
        final.epoch,
        final.loss,
        100 * final.accuracy,
        "not measured" if final.success_rate is None else f"{final.success_rate:.0%}",
        f" (stopped early, after {run.history[-1].epoch:g} epochs)" if stopped_early else "",
        ""
        if refined_from is None
        else f"; kept the first of {config.refine_chunks} finer evaluations to reach the threshold (every "
        f"{config.eval_every} epochs it had jumped to {refined_from.success_rate:.0%} at epoch "
        f"{refined_from.epoch:g})",
        ""
        if best_of is None
        else f"; kept the best evaluation's weights (the last, at epoch {best_of.epoch:g}, "
        f"had {best_of.success_rate or 0.0:.0%})",
        entropy,
        ""
        if logit_scale == 1.0
        else f" (logits scaled by {logit_scale:.2f} to meet max_entropy={config.max_entropy})",
    )
    return BCReport(
        epochs=final.epoch,
        loss=final.loss,
        accuracy=final.accuracy,
        success_rate=final.success_rate,
        stopped_early=stopped_early,
        history=tuple(run.history),
        refined_from=refined_from,
        best_of=best_of,
        logit_scale=logit_scale,
        entropy=entropy,
    )
