"""The critic of an actor-critic policy: which weights it owns, re-initialising them, and fitting
them on rollouts of a fixed actor (warm-up) before PPO may change the actor."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial

import numpy as np
from sb3_contrib.common.maskable.policies import MaskableActorCriticPolicy
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.policies import ActorCriticPolicy
from torch import nn

# The policies whose actor and critic the plugin tells apart: PPO's and MaskablePPO's.
ActorCritic = ActorCriticPolicy | MaskableActorCriticPolicy

logger = logging.getLogger(__name__)


def critic_modules(policy: ActorCritic) -> dict[nn.Module, float]:
    """
    The modules that only the value function uses: the value head, the value MLP, and the critic's
    own features extractor when the policy does not share one (``share_features_extractor=False``).

    :param policy: the policy
    :return: each module with the orthogonal-init gain SB3 gives it
    :raises TypeError: if the policy's MLP extractor has no separate value network
    """
    value_mlp = getattr(policy.mlp_extractor, "value_net", None)
    if not isinstance(value_mlp, nn.Module):
        raise TypeError(
            f"{type(policy.mlp_extractor).__name__} has no `value_net`: cannot tell the critic's weights "
            "from the actor's (SB3's MlpExtractor has one)."
        )
    # Gains as in ActorCriticPolicy._build: sqrt(2) for hidden layers, 1 for the value head.
    modules: dict[nn.Module, float] = {value_mlp: np.sqrt(2), policy.value_net: 1.0}
    if not policy.share_features_extractor:
        modules[policy.vf_features_extractor] = np.sqrt(2)
    return modules


def actor_parameters(policy: ActorCritic) -> list[nn.Parameter]:
    """
    :param policy: the policy
    :return: every parameter the critic does not own (shared features included): those that move
        the action distribution
    """
    critic_ids = {id(param) for module in critic_modules(policy) for param in module.parameters()}
    return [param for param in policy.parameters() if id(param) not in critic_ids]


def reinitialise_critic(policy: ActorCritic) -> None:
    """
    Draw the critic's weights afresh, as SB3 initialises a new policy; the actor is left as it is.

    :param policy: the policy, changed in place
    """
    for module, gain in critic_modules(policy).items():
        for layer in module.modules():
            reset_parameters = getattr(layer, "reset_parameters", None)
            if callable(reset_parameters):
                reset_parameters()
        if policy.ortho_init:
            module.apply(partial(policy.init_weights, gain=gain))


@contextmanager
def actor_frozen(policy: ActorCritic) -> Iterator[None]:
    """
    Within this context the actor's parameters get no gradient, so an optimiser over all the
    policy's parameters (PPO's) only moves the critic. Shared features count as the actor's.

    :param policy: the policy
    """
    frozen = [param for param in actor_parameters(policy) if param.requires_grad]
    for param in frozen:
        param.requires_grad_(False)
    try:
        yield
    finally:
        for param in frozen:
            param.requires_grad_(True)


def warm_up_critic(
    model: OnPolicyAlgorithm,
    steps: int,
    *,
    callback: BaseCallback | None = None,
    tb_log_name: str = "PPO",
    progress_bar: bool = False,
) -> OnPolicyAlgorithm:
    """
    Fit the value function on on-policy rollouts of the model's current (e.g. behaviour-cloned)
    actor, which stays unchanged, so that the first policy updates use advantages from a critic
    that knows this actor rather than from random values.

    This is the model's own ``learn()`` with the actor frozen: the steps count in
    ``model.num_timesteps`` and its logger records them (``train/explained_variance`` says how well
    the critic fits). Continue with ``model.learn(n, reset_num_timesteps=False)``, SB3's way to go on
    training a model, so that they stay counted.

    :param model: an on-policy model (PPO, A2C) with an ``ActorCriticPolicy``
    :param steps: env steps to collect, rounded up to whole rollouts (``n_steps * n_envs``); 0 does nothing
    :param callback: called as in ``learn()``
    :param tb_log_name: name of the TensorBoard run, the same as the ``learn()`` call that continues
    :param progress_bar: show a progress bar
    :return: the model
    :raises ValueError: if ``steps`` is negative
    """
    if steps < 0:
        raise ValueError(f"critic warm-up steps must be non-negative, got {steps}.")
    if steps == 0:
        return model
    rollout_size = model.n_steps * model.n_envs
    if steps % rollout_size:
        logger.info(
            "Critic warm-up of %d steps rounded up to %d (whole rollouts of %d).",
            steps,
            -(-steps // rollout_size) * rollout_size,
            rollout_size,
        )
    with actor_frozen(model.policy):
        model.learn(
            total_timesteps=steps,
            callback=callback,
            tb_log_name=tb_log_name,
            reset_num_timesteps=False,
            progress_bar=progress_bar,
        )
    return model
