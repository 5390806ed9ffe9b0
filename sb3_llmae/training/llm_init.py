"""A PPO model initialised from demonstrations: behaviour cloning, then critic warm-up."""

from __future__ import annotations

import logging
import os
from types import MappingProxyType
from typing import Any

from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.utils import configure_logger
from stable_baselines3.common.vec_env import VecEnv

from sb3_llmae.demonstrations import Demonstrations, load_demonstrations
from sb3_llmae.training.bc import BCReport, actor_critic_policy, pretrain_bc
from sb3_llmae.training.critic import reinitialise_critic, warm_up_critic
from sb3_llmae.training.ppo import REFERENCE_N_ENVS, InitMode, check_init, make_ppo

logger = logging.getLogger(__name__)

# BC as the reference recipe runs it: stop at 15% greedy success, since a prior that imitates the
# expert too confidently explores too little for PPO to improve on it.
LLM_INIT_BC_KWARGS: MappingProxyType[str, Any] = MappingProxyType({"stop_at_success": 0.15})


def clone_prior(
    model: OnPolicyAlgorithm,
    demonstrations: Demonstrations,
    *,
    init: InitMode = "actor",
    bc_kwargs: dict[str, Any] | None = None,
    max_episode_steps: int | None = None,
    seed: int | None = None,
    env_id: str | None = None,
) -> BCReport:
    """
    The prior of an LLM-initialised model: behaviour-clone the demonstrations into the model's
    policy (``bc_kwargs`` over ``LLM_INIT_BC_KWARGS``, ``bc/*`` figures to the model's logger when it
    writes TensorBoard), then, with ``init="actor"``, draw the critic's weights afresh.

    :param model: an on-policy model (PPO, MaskablePPO) with an actor-critic policy, changed in place
    :param demonstrations: the demonstrations
    :param init: ``"actor"`` or ``"full"``
    :param bc_kwargs: keyword arguments of :func:`~sb3_llmae.training.bc.pretrain_bc`
    :param max_episode_steps: step limit of the episodes that measure BC's success rate
    :param seed: seed of the order of BC batches
    :param env_id: env BC's success rate is measured on; ``None``: the demonstrations' env
    :return: what BC did
    """
    bc_settings = {**LLM_INIT_BC_KWARGS, **(bc_kwargs or {})}
    stop_at_success = bc_settings.get("stop_at_success")
    report = pretrain_bc(
        model,
        demonstrations,
        **{
            "eval_env": (env_id or demonstrations.env_id) if stop_at_success is not None else None,
            "eval_max_episode_steps": max_episode_steps,
            "seed": seed or 0,
            "sb3_logger": model.logger if model.tensorboard_log is not None else None,
            **bc_settings,
        },
    )
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
    algo: type[OnPolicyAlgorithm] = PPO,
    init: InitMode = "actor",
    bc_kwargs: dict[str, Any] | None = None,
    critic_warmup_steps: int = 2048,
    n_envs: int = REFERENCE_N_ENVS,
    max_episode_steps: int | None = None,
    seed: int | None = None,
    callback: BaseCallback | None = None,
    tb_log_name: str = "PPO",
    **ppo_kwargs: Any,
) -> OnPolicyAlgorithm:
    """
    Build a PPO model whose policy is behaviour-cloned on demonstrations and whose critic is fitted
    to that policy, ready for ``learn()``.

    Steps: (1) :func:`~sb3_llmae.training.ppo.make_ppo`, the same builder as PPO from scratch;
    (2) :func:`~sb3_llmae.training.bc.pretrain_bc` on the model's own policy, by default stopped once
    the greedy success rate reaches 0.15 (``LLM_INIT_BC_KWARGS``); (3) with ``init="actor"``, the
    critic's weights are drawn afresh; (4) :func:`~sb3_llmae.training.critic.warm_up_critic`:
    ``critic_warmup_steps`` env steps of the BC policy fit the value function while the actor stays
    fixed. These steps are training steps of the model: ``model.num_timesteps`` starts at them.
    Continue training as for any SB3 model that has already trained,
    ``model.learn(n, reset_num_timesteps=False)``, so that they stay counted (the plain ``learn(n)``
    restarts the count at 0, the weights are the same).

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
        :func:`~sb3_llmae.training.ppo.make_ppo`); a recurrent policy is refused by BC
    :param init: ``"actor"`` or ``"full"``
    :param bc_kwargs: keyword arguments of :func:`~sb3_llmae.training.bc.pretrain_bc` (``epochs``,
        ``batch_size``, ``learning_rate``, ``stop_at_success``, ``eval_every``, ...), over
        ``LLM_INIT_BC_KWARGS``
    :param critic_warmup_steps: env steps of critic warm-up (rounded up to whole rollouts); 0: none
    :param n_envs: number of envs when ``env`` is an id
    :param max_episode_steps: step limit of the envs made when ``env`` is an id, and of the episodes
        that measure BC's success rate; ``None`` keeps the env's own
    :param seed: seed of the model, its envs and the order of BC batches
    :param callback: called during the critic warm-up, as in ``learn()``
    :param tb_log_name: name of the TensorBoard run of BC, warm-up and later training
    :param ppo_kwargs: passed to :func:`~sb3_llmae.training.ppo.make_ppo` (e.g. ``learning_rate``,
        ``n_steps``, ``tensorboard_log``, ``policy_kwargs``)
    :return: the model
    :raises ValueError: for an unknown ``init``, or demonstrations that do not fit the policy
    """
    if check_init(init) == "scratch":
        raise ValueError("llm_init_ppo initialises from demonstrations: init must be 'actor' or 'full'.")
    demos = (
        demonstrations if isinstance(demonstrations, Demonstrations) else load_demonstrations(demonstrations)
    )
    eval_env = env if isinstance(env, str) else demos.env_id
    model = make_ppo(
        env,
        algo=algo,
        init=init,
        obs_mode=demos.obs_mode,
        n_envs=n_envs,
        max_episode_steps=max_episode_steps,
        seed=seed,
        **ppo_kwargs,
    )
    if model.tensorboard_log is not None:
        # One run for BC, warm-up and what follows; learn() keeps a logger set with set_logger().
        model.set_logger(configure_logger(model.verbose, model.tensorboard_log, tb_log_name))
    clone_prior(
        model,
        demos,
        init=init,
        bc_kwargs=bc_kwargs,
        max_episode_steps=max_episode_steps,
        seed=seed,
        env_id=eval_env,
    )
    warm_up_critic(model, critic_warmup_steps, callback=callback, tb_log_name=tb_log_name)
    return model
