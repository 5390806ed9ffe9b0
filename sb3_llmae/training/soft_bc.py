"""Soft-target behaviour cloning: the policy fits the teacher's whole distribution over the actions
(cross-entropy to it, the student loss of LLM4Teach) instead of the one action the teacher took.

With an LLM teacher that gives its action log-probabilities (``decision="logprobs"``), the
distribution says how sure the teacher was: a policy cloned from it keeps the teacher's doubt
where the teacher had some, instead of copying its arg-max as if it were certain.
"""

from __future__ import annotations

import numpy as np
import torch as th
from stable_baselines3.common.policies import ActorCriticPolicy


def soft_target_loss(
    policy: ActorCriticPolicy,
    obs: th.Tensor,
    targets: th.Tensor,
    ent_weight: float = 0.0,
    l2_weight: float = 0.0,
) -> tuple[th.Tensor, th.Tensor]:
    """
    The loss of one batch, shaped as imitation's BC loss with the action's negative log-likelihood
    replaced by the cross-entropy to the teacher's distribution.

    :param policy: the policy (only its actor gets gradients)
    :param obs: a batch of observations, as tensors on the policy's device
    :param targets: the teacher's probabilities, ``(batch, n_actions)``
    :param ent_weight: weight of the entropy bonus
    :param l2_weight: weight of the L2 penalty on all the policy's parameters
    :return: the loss and the cross-entropy alone (without the gradient)
    """
    distribution = policy.get_distribution(obs)
    categorical = distribution.distribution
    if not isinstance(categorical, th.distributions.Categorical):
        raise TypeError(f"Soft targets need a Discrete action space, the policy has {policy.action_space}.")
    log_probs = th.log_softmax(categorical.logits, dim=-1)
    cross_entropy = -(targets * log_probs).sum(dim=-1).mean()
    entropy = distribution.entropy()
    loss = cross_entropy
    if ent_weight and entropy is not None:
        loss = loss - ent_weight * entropy.mean()
    if l2_weight:
        loss = loss + l2_weight * sum(th.sum(th.square(w)) for w in policy.parameters()) / 2
    return loss, cross_entropy.detach()


def train_soft_targets(
    policy: ActorCriticPolicy,
    optimizer: th.optim.Optimizer,
    obs: np.ndarray,
    targets: np.ndarray,
    batch_size: int,
    rng: np.random.Generator,
    n_epochs: int | None = None,
    n_batches: int | None = None,
    ent_weight: float = 0.0,
    l2_weight: float = 0.0,
) -> float:
    """
    Fit the policy to the teacher's distributions, for ``n_epochs`` passes or ``n_batches`` batches.

    :param policy: the policy, trained in place
    :param optimizer: the optimizer of its parameters
    :param obs: the observations of the transitions
    :param targets: the teacher's probabilities for each, ``(n_transitions, n_actions)``, rows summing to 1
    :param batch_size: transitions per gradient step
    :param rng: the order in which transitions are batched
    :param n_epochs: passes over the transitions (exactly one of ``n_epochs`` and ``n_batches``)
    :param n_batches: gradient steps
    :param ent_weight: weight of the entropy bonus
    :param l2_weight: weight of the L2 penalty
    :return: the mean cross-entropy of the last pass's batches
    :raise ValueError: when targets and observations do not match, or the targets are not distributions
    """
    if (n_epochs is None) == (n_batches is None):
        raise ValueError("Give exactly one of n_epochs and n_batches.")
    if len(targets) != len(obs):
        raise ValueError(f"{len(targets)} soft targets for {len(obs)} transitions: one per transition.")
    if targets.ndim != 2 or not np.isfinite(targets).all() or (targets < 0).any():
        raise ValueError(
            "Soft targets must be finite, non-negative (n_transitions, n_actions) probabilities."
        )
    if not np.allclose(targets.sum(axis=1), 1.0, atol=1e-3):
        raise ValueError("Each soft target must sum to 1 (a distribution over the actions).")
    total_batches = n_batches if n_batches is not None else (n_epochs or 0) * -(-len(obs) // batch_size)
    target_tensor = th.as_tensor(targets, dtype=th.float32, device=policy.device)
    policy.set_training_mode(True)
    done = 0
    losses: list[float] = []
    while done < total_batches:
        order = rng.permutation(len(obs))
        losses = []
        for start in range(0, len(order), batch_size):
            if done == total_batches:
                break
            index = order[start : start + batch_size]
            batch_obs = th.as_tensor(obs[index], device=policy.device)
            loss, cross_entropy = soft_target_loss(
                policy, batch_obs, target_tensor[index], ent_weight=ent_weight, l2_weight=l2_weight
            )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            losses.append(float(cross_entropy))
            done += 1
    policy.set_training_mode(False)
    return float(np.mean(losses)) if losses else float("nan")
