"""A PPO model initialised from demonstrations: behaviour cloning, then critic warm-up."""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Mapping
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import Logger
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import VecEnv

from sb3_llmae.demonstrations import Demonstrations, load_demonstrations
from sb3_llmae.envs import env_id_of
from sb3_llmae.training.bc import BCReport, actor_critic_policy, pretrain_bc
from sb3_llmae.training.config import (
    BC_EVALUATION,
    CRITIC_WARMUP_STEPS,
    BCConfig,
    EvalConfig,
    split_bc_settings,
)
from sb3_llmae.training.continuation import continue_on_next_learn
from sb3_llmae.training.critic import reinitialise_critic, warm_up_critic
from sb3_llmae.training.kl_ppo import KL_PPO_OPTIONS, KLPPO
from sb3_llmae.training.ppo import InitMode, check_init, make_ppo

logger = logging.getLogger(__name__)

BCSettings = BCConfig | Mapping[str, Any]


def clone_prior(
    model: OnPolicyAlgorithm,
    demonstrations: Demonstrations,
    *,
    init: InitMode = "actor",
    bc_kwargs: BCSettings | None = None,
    evaluation: EvalConfig | None = None,
    seed: int | None = None,
    sb3_logger: Logger | None = None,
    allow_env_mismatch: bool = False,
) -> BCReport:
    """
    The prior of an LLM-initialised model: behaviour-clone the demonstrations into the model's
    policy, then, with ``init="actor"``, draw the critic's weights afresh.

    :param model: an on-policy model (PPO, MaskablePPO) with an actor-critic policy, changed in place
    :param demonstrations: the demonstrations
    :param init: ``"actor"`` or ``"full"``
    :param bc_kwargs: BC settings: a :class:`~sb3_llmae.training.config.BCConfig` or a mapping of its
        fields (``None``: its defaults)
    :param evaluation: how BC's greedy success rate is measured (on the model's env, with
        ``stop_at_success``); ``None``: :class:`~sb3_llmae.training.config.EvalConfig`'s defaults
    :param seed: seed of the order of BC batches, unless ``bc_kwargs`` sets one
    :param sb3_logger: where BC's ``bc/*`` figures go at each evaluation (e.g. ``model.logger``)
    :param allow_env_mismatch: clone demonstrations of another env than the model's (refused by default)
    :return: what BC did
    """
    config, eval_fields, progress_bar = split_bc_settings(bc_kwargs)
    if not isinstance(bc_kwargs, BCConfig) and "seed" not in (bc_kwargs or {}):
        config = dataclasses.replace(config, seed=seed or 0)
    report = pretrain_bc(
        model,
        demonstrations,
        config,
        evaluation=dataclasses.replace(evaluation or BC_EVALUATION, **eval_fields),
        sb3_logger=sb3_logger,
        allow_env_mismatch=allow_env_mismatch,
        progress_bar=bool(progress_bar),
    )
    stop_at_success = config.stop_at_success
    if (
        stop_at_success is not None
        and not report.stopped_early
        and (report.success_rate or 0.0) < stop_at_success
    ):
        logger.warning(
            "BC reached a greedy success rate of %.0f%% in %d epochs, below stop_at_success=%s: "
            "PPO starts from a weaker prior (more epochs or more demonstrations may help).",
            100 * (report.success_rate or 0.0),
            report.epochs,
            stop_at_success,
        )
    if init == "actor":
        reinitialise_critic(actor_critic_policy(model))
    return report


def llm_init_ppo(
    env: str | VecEnv,
    demonstrations: Demonstrations | str | os.PathLike[str],
    *,
    algo: type[OnPolicyAlgorithm] | None = None,
    init: InitMode = "actor",
    bc_kwargs: BCSettings | None = None,
    critic_warmup_steps: int = CRITIC_WARMUP_STEPS,
    seed: int | None = None,
    callback: BaseCallback | None = None,
    tb_log_name: str = "PPO",
    allow_env_mismatch: bool = False,
    **ppo_kwargs: Any,
) -> OnPolicyAlgorithm:
    """
    Build a PPO model whose policy is behaviour-cloned on demonstrations and whose critic is fitted
    to that policy, ready for ``learn()``.

    Steps: (1) :func:`~sb3_llmae.training.ppo.make_ppo`, the same builder as PPO from scratch;
    (2) :func:`~sb3_llmae.training.bc.pretrain_bc` on the model's own policy, with ``bc_kwargs``
    (by default :class:`~sb3_llmae.training.config.BCConfig`'s, chosen from the measurements in
    ``docs/measurements.md``: until the greedy policy plays held-out seeds, the best evaluation's weights
    kept); (3) with ``init="actor"``, the critic's weights
    are drawn afresh; (4) :func:`~sb3_llmae.training.critic.warm_up_critic`: ``critic_warmup_steps``
    env steps of the BC policy fit the value function while the actor stays fixed. These steps are
    training steps of the model: ``model.num_timesteps`` starts at them, and the next ``model.learn(n)``
    goes on from there in the same TensorBoard run, as ``learn(n, reset_num_timesteps=False)`` would
    (:func:`~sb3_llmae.training.continuation.continue_on_next_learn`; a model saved and loaded again
    needs ``reset_num_timesteps=False``, as every SB3 model does).

    Given any of ``kl_coef``, ``kl_decay_steps``, ``critic_learning_rate`` (see
    :class:`~sb3_llmae.training.config.KLConfig`), the model is a
    :class:`~sb3_llmae.training.kl_ppo.KLPPO` whose prior is the behaviour-cloned actor: with
    ``kl_coef > 0`` PPO's loss gets ``beta * KL(prior || policy)``, ``beta`` falling from ``kl_coef``
    to 0 over ``kl_decay_steps`` env steps counted from the end of BC. Otherwise it is plain ``PPO``.

    With ``tensorboard_log``, BC's ``bc/*`` figures, the warm-up and every later ``learn()`` go to one
    TensorBoard run, ``tb_log_name``: the model keeps the logger set up here.

    ``init="actor"`` keeps only the actor from BC; the critic gets its own features extractor and
    starts fresh, so BC's features stay the actor's alone. ``init="full"`` keeps the whole network as
    BC leaves it, one features extractor shared by actor and critic, so the critic starts from the
    features BC learned. ``policy_kwargs`` may override either choice.

    :param env: an env id (made with :func:`~sb3_llmae.envs.make_vec_env` in the demonstrations'
        observation mode) or a VecEnv
    :param demonstrations: demonstrations, or the directory they were saved in
    :param algo: ``PPO`` or sb3-contrib's ``MaskablePPO`` (whose envs, made here from an id, get
        :func:`~sb3_llmae.masks.minigrid_action_mask`), or a subclass of one (see
        :func:`~sb3_llmae.training.ppo.make_ppo`); a recurrent policy is refused by BC. ``None``:
        ``KLPPO`` when KL options are given, ``PPO`` otherwise
    :param init: ``"actor"`` or ``"full"``
    :param bc_kwargs: BC settings: a :class:`~sb3_llmae.training.config.BCConfig`, or a mapping of its
        fields (``epochs``, ``batch_size``, ``learning_rate``, ``stop_at_success``, ``eval_every``, ...)
    :param critic_warmup_steps: env steps of critic warm-up (rounded up to whole rollouts); 0: none
    :param seed: seed of the model, its envs and (unless ``bc_kwargs`` sets one) the order of BC batches
    :param callback: called during the critic warm-up, as in ``learn()``
    :param tb_log_name: name of the TensorBoard run of BC, warm-up and later training
    :param allow_env_mismatch: train on demonstrations of another env than ``env``; refused by default
    :param ppo_kwargs: passed to :func:`~sb3_llmae.training.ppo.make_ppo`: ``n_envs``,
        ``max_episode_steps`` (also the step limit of the episodes that measure BC's success rate),
        PPO's own (``learning_rate``, ``n_steps``, ``tensorboard_log``, ``policy_kwargs``, ...) and
        the KL options
    :return: the model (:func:`~sb3_llmae.training.ppo.load_ppo` restores it, a ``KLPPO`` with its
        prior; ``PPO.load`` also reads a ``KLPPO`` as plain PPO)
    :raises ValueError: for an unknown ``init``, demonstrations of another env (unless allowed), or
        demonstrations that do not fit the policy
    """
    if check_init(init) == "scratch":
        raise ValueError("llm_init_ppo initialises from demonstrations: init must be 'actor' or 'full'.")
    demos = (
        demonstrations if isinstance(demonstrations, Demonstrations) else load_demonstrations(demonstrations)
    )
    # Checked before any work: the env's id, and the other arguments that only later steps would check.
    demos.check_env_id(env if isinstance(env, str) else env_id_of(env), allow_env_mismatch)
    split_bc_settings(bc_kwargs)
    if critic_warmup_steps < 0:
        raise ValueError(f"critic_warmup_steps must be >= 0, got {critic_warmup_steps}.")
    if algo is None:
        algo = KLPPO if set(KL_PPO_OPTIONS) & set(ppo_kwargs) else PPO
    model = make_ppo(env, algo=algo, init=init, obs_mode=demos.obs_mode, seed=seed, **ppo_kwargs)
    if model.tensorboard_log is not None:
        # One run for BC, warm-up and what follows; learn() keeps a logger set with set_logger().
        model.set_logger(configure_logger(model.verbose, model.tensorboard_log, tb_log_name))
    clone_prior(
        model,
        demos,
        init=init,
        bc_kwargs=bc_kwargs,
        evaluation=dataclasses.replace(BC_EVALUATION, max_episode_steps=ppo_kwargs.get("max_episode_steps")),
        seed=seed,
        sb3_logger=model.logger if model.tensorboard_log is not None else None,
        allow_env_mismatch=True,  # checked above
    )
    if isinstance(model, KLPPO):
        # The KL term pulls towards the behaviour-cloned actor from here on.
        model.set_prior()
    warm_up_critic(model, critic_warmup_steps, callback=callback, tb_log_name=tb_log_name)
    # The warm-up steps are the start of the run that learn() goes on with, even as learn(n).
    return continue_on_next_learn(model)
