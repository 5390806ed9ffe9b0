"""A logit temperature on a cloned actor: how peaked its action distribution is, without changing
which action is greedy."""

from __future__ import annotations

import logging

import numpy as np
import torch as th
from gymnasium import spaces

from sb3_llmae.training.critic import ActorCritic

logger = logging.getLogger(__name__)

# Observations per forward pass when measuring the entropy on many states.
ENTROPY_BATCH_SIZE = 4096
# The largest logit scale searched: an entropy cap this cannot reach is met as closely as it allows.
MAX_LOGIT_SCALE = 64.0
BISECTION_STEPS = 40


def mean_action_entropy(policy: ActorCritic, observations: np.ndarray, logit_scale: float = 1.0) -> float:
    """
    :param policy: an actor-critic policy with a discrete action space
    :param observations: states, in the policy's observation layout
    :param logit_scale: factor applied to the action logits first (1: the policy as it is)
    :return: the mean entropy (nats) of the policy's action distribution on those states
    """
    total = 0.0
    with th.no_grad():
        for start in range(0, len(observations), ENTROPY_BATCH_SIZE):
            obs, _ = policy.obs_to_tensor(np.asarray(observations[start : start + ENTROPY_BATCH_SIZE]))
            # Log-probabilities differ from the logits by a constant per state: scaling either is the same.
            categorical = policy.get_distribution(obs).distribution
            if not isinstance(categorical, th.distributions.Categorical):
                raise ValueError(
                    f"Expected a categorical action distribution, got {type(categorical).__name__}."
                )
            log_probs = categorical.logits
            total += float(th.distributions.Categorical(logits=log_probs * logit_scale).entropy().sum())
    return total / len(observations)


def scale_action_logits(policy: ActorCritic, logit_scale: float) -> None:
    """
    Multiply the action head's weights and bias by ``logit_scale``: the logits scale by it, a
    temperature of ``1 / logit_scale`` that lives in the weights, so the policy stays a plain SB3
    policy (saved, loaded and fine-tuned as any other). The greedy action does not change.

    :param policy: an actor-critic policy with a discrete action space, changed in place
    :param logit_scale: a positive factor
    :raises ValueError: for a factor that is not positive
    """
    if not (np.isfinite(logit_scale) and logit_scale > 0):
        raise ValueError(f"logit_scale must be a positive number, got {logit_scale}.")
    with th.no_grad():
        for parameter in policy.action_net.parameters():
            parameter.mul_(logit_scale)


def cap_action_entropy(policy: ActorCritic, observations: np.ndarray, max_entropy: float) -> float:
    """
    Sharpen the policy's action distribution until its mean entropy on ``observations`` is at most
    ``max_entropy``, by the smallest logit scale that does so (found by bisection); a policy already
    below the cap is left as it is.

    :param policy: an actor-critic policy with a discrete action space, changed in place
    :param observations: states, in the policy's observation layout (e.g. the demonstrations')
    :param max_entropy: the cap, in nats
    :return: the logit scale applied (1.0: none; ``MAX_LOGIT_SCALE``, with a warning, where even it
        leaves the entropy above the cap)
    :raises ValueError: for a non-discrete action space or an empty set of states
    """
    if not isinstance(policy.action_space, spaces.Discrete):
        raise ValueError(
            f"An entropy cap needs a discrete action space (MiniGrid's), got {policy.action_space}: "
            "set BCConfig(max_entropy=None)."
        )
    if len(observations) == 0:
        raise ValueError("cap_action_entropy needs at least one state.")
    if mean_action_entropy(policy, observations) <= max_entropy:
        return 1.0
    low, high = 1.0, MAX_LOGIT_SCALE
    if mean_action_entropy(policy, observations, high) > max_entropy:
        logger.warning(
            "The action entropy cannot be brought down to %.2f nats by scaling the logits up to %gx "
            "(nearly equal logits: was the policy trained?); scaled by %g.",
            max_entropy,
            high,
            high,
        )
        low = high
    else:
        # Entropy falls monotonically as the logits are scaled up.
        for _ in range(BISECTION_STEPS):
            middle = (low * high) ** 0.5
            if mean_action_entropy(policy, observations, middle) > max_entropy:
                low = middle
            else:
                high = middle
        low = high
    scale_action_logits(policy, low)
    return low
