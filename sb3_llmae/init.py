"""A PPO model initialised from demonstrations: behaviour cloning, then critic warm-up."""

from __future__ import annotations

import logging
import os
from types import MappingProxyType
from typing import Any, Literal

from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecEnv

from sb3_llmae.critic import reinitialise_critic, warm_up_critic
from sb3_llmae.demonstrations import Demonstrations, load_demonstrations
from sb3_llmae.envs import make_vec_env
from sb3_llmae.features import MinigridFeaturesExtractor
from sb3_llmae.pretrain import pretrain_bc

logger = logging.getLogger(__name__)

InitMode = Literal["actor", "full"]
INIT_MODES: tuple[str, ...] = ("actor", "full")

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


def default_policy_kwargs(
    observation_space: spaces.Space, share_features_extractor: bool = True
) -> dict[str, Any]:
    """
    :param observation_space: the env's observation space
    :param share_features_extractor: whether actor and critic share one features extractor
    :return: ``policy_kwargs`` for ``"MlpPolicy"``: :class:`MinigridFeaturesExtractor` for MiniGrid's
        grid observations (``obs_mode="image"``), SB3's default extractor otherwise
    """
    policy_kwargs: dict[str, Any] = {"share_features_extractor": share_features_extractor}
    shape = observation_space.shape or ()
    if isinstance(observation_space, spaces.Box) and len(shape) == 3 and 3 in (shape[0], shape[-1]):
        policy_kwargs["features_extractor_class"] = MinigridFeaturesExtractor
    return policy_kwargs


def llm_init_ppo(
    env: str | VecEnv,
    demonstrations: Demonstrations | str | os.PathLike[str],
    *,
    init: InitMode = "actor",
    stop_at_success: float | None = 0.15,
    bc_epochs: int = 100,
    bc_batch_size: int = 32,
    bc_learning_rate: float = 1e-4,
    bc_eval_every: int = 2,
    bc_eval_episodes: int = 20,
    critic_warmup_steps: int = 2048,
    n_envs: int = 4,
    max_episode_steps: int | None = None,
    seed: int | None = None,
    **ppo_kwargs: Any,
) -> PPO:
    """
    Build a PPO model whose policy is behaviour-cloned on demonstrations and whose critic is fitted
    to that policy, ready for ``learn()``.

    Steps: (1) ``PPO("MlpPolicy", env, ...)``, with :class:`MinigridFeaturesExtractor` for grid
    observations; (2) :func:`~sb3_llmae.pretrain.pretrain_bc` on the model's own policy, stopped once
    the greedy success rate reaches ``stop_at_success``; (3) with ``init="actor"``, the critic's weights
    are drawn afresh; (4) :func:`~sb3_llmae.critic.warm_up_critic`: ``critic_warmup_steps`` env steps of
    the BC policy fit the value function while the actor stays fixed. These steps are training steps of
    the model: ``model.num_timesteps`` starts at them. Continue training as for any SB3 model that has
    already trained, ``model.learn(n, reset_num_timesteps=False)``, so that they stay counted (the plain
    ``learn(n)`` restarts the count at 0, the weights are the same).

    ``init="actor"`` keeps only the actor from BC; the critic gets its own features extractor
    (``share_features_extractor=False``) and starts fresh, so BC's features stay the actor's alone.
    ``init="full"`` keeps the whole network as BC leaves it, one features extractor shared by actor
    and critic, so the critic starts from the features BC learned. ``policy_kwargs`` may override
    either choice.

    :param env: an env id (made with :func:`~sb3_llmae.envs.make_vec_env` in the demonstrations'
        observation mode) or a VecEnv
    :param demonstrations: demonstrations, or the directory they were saved in
    :param init: ``"actor"`` or ``"full"``
    :param stop_at_success: stop BC once the greedy success rate reaches this (``None``: run all epochs)
    :param bc_epochs: largest number of BC epochs
    :param bc_batch_size: BC batch size
    :param bc_learning_rate: BC learning rate (Adam)
    :param bc_eval_every: BC epochs between evaluations of the success rate
    :param bc_eval_episodes: episodes per evaluation
    :param critic_warmup_steps: env steps of critic warm-up (rounded up to whole rollouts); 0: none
    :param n_envs: number of envs when ``env`` is an id
    :param max_episode_steps: step limit of the envs made when ``env`` is an id, and of the episodes
        that measure BC's success rate; ``None`` keeps the env's own
    :param seed: seed of the model, its envs and the order of BC batches
    :param ppo_kwargs: passed to ``PPO`` (e.g. ``learning_rate``, ``n_steps``, ``tensorboard_log``);
        ``policy_kwargs`` are merged over the defaults above
    :return: the model
    :raises ValueError: for an unknown ``init``, or demonstrations that do not fit the policy
    """
    if init not in INIT_MODES:
        raise ValueError(f"Unknown init {init!r}: choose one of {', '.join(INIT_MODES)}.")
    demos = (
        demonstrations if isinstance(demonstrations, Demonstrations) else load_demonstrations(demonstrations)
    )
    eval_env = demos.env_id
    if isinstance(env, str):
        eval_env = env
        env = make_vec_env(
            env, n_envs=n_envs, obs_mode=demos.obs_mode, seed=seed, max_episode_steps=max_episode_steps
        )
    policy_kwargs = {
        **default_policy_kwargs(env.observation_space, share_features_extractor=init == "full"),
        **(ppo_kwargs.pop("policy_kwargs", None) or {}),
    }
    policy = ppo_kwargs.pop("policy", "MlpPolicy")
    model = PPO(policy, env, policy_kwargs=policy_kwargs, seed=seed, **ppo_kwargs)

    report = pretrain_bc(
        model,
        demos,
        epochs=bc_epochs,
        batch_size=bc_batch_size,
        learning_rate=bc_learning_rate,
        stop_at_success=stop_at_success,
        eval_env=eval_env if stop_at_success is not None else None,
        eval_every=bc_eval_every,
        eval_episodes=bc_eval_episodes,
        eval_max_episode_steps=max_episode_steps,
        seed=seed or 0,
    )
    if (
        stop_at_success is not None
        and not report.stopped_early
        and (report.success_rate or 0.0) < stop_at_success
    ):
        logger.warning(
            "BC reached a greedy success rate of %.0f%% in %d epochs, below stop_at_success=%s: "
            "PPO starts from a weaker prior (more bc_epochs or more demonstrations may help).",
            100 * (report.success_rate or 0.0),
            report.epochs,
            stop_at_success,
        )
    if init == "actor":
        reinitialise_critic(model.policy)
    warm_up_critic(model, critic_warmup_steps)
    return model
