"""
PPO that keeps a prior: the clipped PPO loss plus ``beta * KL(pi_prior || pi)`` on each minibatch,
``beta`` annealed to 0 (the approach of LLM4Teach), and a critic with its own learning rate.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import torch as th
from gymnasium import spaces
from stable_baselines3 import PPO
from stable_baselines3.common.distributions import kl_divergence
from stable_baselines3.common.policies import ActorCriticPolicy
from stable_baselines3.common.type_aliases import Schedule
from stable_baselines3.common.utils import FloatSchedule, explained_variance
from torch.nn import functional as F

from sb3_llmae.training.config import KLConfig
from sb3_llmae.training.critic import actor_parameters, critic_modules

# Options KLPPO adds to PPO's: make_ppo names them when it is asked for plain PPO.
KL_PPO_OPTIONS = tuple(field.name for field in dataclasses.fields(KLConfig))


class KLPPO(PPO):
    """
    Proximal Policy Optimization with a KL penalty towards a fixed prior policy, in the style of
    sb3-contrib: PPO's loss plus ``beta * KL(pi_prior(.|s) || pi(.|s))`` averaged over each
    minibatch, where ``beta`` starts at ``kl_coef`` when the prior is set (:meth:`set_prior`) and
    falls linearly to 0 over ``kl_decay_steps`` env steps. The prior keeps a behaviour-cloned
    policy's knowledge while PPO's advantages sharpen it; as ``beta`` falls, PPO alone decides.

    The critic may learn at its own rate (``critic_learning_rate``): the optimiser then has two
    parameter groups, the actor's (shared features included) at ``learning_rate`` and the critic's.

    With ``kl_coef=0`` and no ``critic_learning_rate`` it trains exactly as :class:`~stable_baselines3.PPO`.
    The prior is saved and loaded with the model (``KLPPO.load``), like the policy.

    :param policy: the policy model to use (``"MlpPolicy"``, ``"CnnPolicy"``, ...)
    :param env: the environment to learn from
    :param kl_coef: ``beta`` when the prior is set; 0 turns the penalty off
    :param kl_decay_steps: env steps over which ``beta`` falls linearly to 0, counted from the step
        at which the prior was set; ``None`` keeps ``beta`` constant
    :param critic_learning_rate: learning rate (or schedule) of the critic's own parameters;
        ``None``: the critic learns at ``learning_rate``, in one parameter group as in PPO
    :param ppo_kwargs: passed to :class:`~stable_baselines3.PPO` (``learning_rate``, ``n_steps``, ...)
    """

    def __init__(
        self,
        policy: str | type[ActorCriticPolicy],
        env: Any,
        kl_coef: float = KLConfig.kl_coef,
        kl_decay_steps: int | None = KLConfig.kl_decay_steps,
        critic_learning_rate: float | Schedule | None = KLConfig.critic_learning_rate,
        **ppo_kwargs: Any,
    ) -> None:
        if kl_coef < 0:
            raise ValueError(f"kl_coef must be non-negative, got {kl_coef}.")
        if kl_decay_steps is not None and kl_decay_steps <= 0:
            raise ValueError(
                f"kl_decay_steps must be positive (or None for a constant beta), got {kl_decay_steps}."
            )
        if isinstance(critic_learning_rate, int | float) and critic_learning_rate <= 0:
            raise ValueError(f"critic_learning_rate must be positive, got {critic_learning_rate}.")
        # Set before PPO's constructor, which calls _setup_model().
        self.kl_coef = float(kl_coef)
        self.kl_decay_steps = kl_decay_steps
        self.critic_learning_rate = critic_learning_rate
        self.prior_timestep = 0
        super().__init__(policy, env, **ppo_kwargs)

    def _setup_model(self) -> None:
        super()._setup_model()
        self.critic_lr_schedule: Schedule | None = None
        if self.critic_learning_rate is not None:
            self.critic_lr_schedule = FloatSchedule(self.critic_learning_rate)
            critic_params = [p for module in critic_modules(self.policy) for p in module.parameters()]
            # Group 0: the actor at the main learning rate; group 1: the critic at its own.
            optimizer_class: Any = self.policy.optimizer_class
            self.policy.optimizer = optimizer_class(
                actor_parameters(self.policy), lr=self.lr_schedule(1.0), **self.policy.optimizer_kwargs
            )
            self.policy.optimizer.add_param_group(
                {"params": critic_params, "lr": self.critic_lr_schedule(1.0)}
            )
        # The prior starts as the initial policy; set_prior() replaces it (e.g. after BC). Its
        # random initial weights are overwritten: drawing them must not shift the model's random
        # stream, so that KLPPO with kl_coef=0 trains exactly as PPO with the same seed.
        with th.random.fork_rng(devices=[]):
            prior_policy = self.policy_class(
                self.observation_space,
                self.action_space,
                self.lr_schedule,
                use_sde=self.use_sde,
                **self.policy_kwargs,
            ).to(self.device)
        if not isinstance(prior_policy, ActorCriticPolicy):
            raise TypeError(f"KLPPO needs an ActorCriticPolicy, got {type(prior_policy).__name__}.")
        self.prior_policy = prior_policy
        # KLPPO.load sets the saved attributes, prior_weights among them, before calling this.
        prior_weights = self.__dict__.pop("prior_weights", None)
        if prior_weights is None:
            self.prior_policy.load_state_dict(self.policy.state_dict())
        else:
            self.prior_policy.load_state_dict({name: th.as_tensor(w) for name, w in prior_weights.items()})
        self.prior_policy.set_training_mode(False)
        self.prior_policy.requires_grad_(False)

    def set_prior(self, policy: ActorCriticPolicy | None = None) -> None:
        """
        Fix the prior the KL term pulls towards, and start annealing ``beta`` from ``kl_coef`` now.

        :param policy: a policy with the same layout as the model's; ``None``: the model's current
            policy (a copy of its weights: later training does not move the prior)
        """
        source = self.policy if policy is None else policy
        self.prior_policy.load_state_dict(source.state_dict())
        self.prior_timestep = self.num_timesteps

    def current_kl_coef(self) -> float:
        """
        :return: ``beta`` at the model's current step: ``kl_coef`` annealed linearly to 0 over
            ``kl_decay_steps`` from the step at which the prior was set
        """
        if self.kl_decay_steps is None:
            return self.kl_coef
        elapsed = self.num_timesteps - self.prior_timestep
        return self.kl_coef * max(0.0, 1.0 - elapsed / self.kl_decay_steps)

    def _update_learning_rate(self, optimizers: list[th.optim.Optimizer] | th.optim.Optimizer) -> None:
        super()._update_learning_rate(optimizers)
        if self.critic_lr_schedule is not None:
            critic_lr = self.critic_lr_schedule(self._current_progress_remaining)
            self.logger.record("train/critic_learning_rate", critic_lr)
            update_learning_rate_of_group(self.policy.optimizer, 1, critic_lr)

    def _excluded_save_params(self) -> list[str]:
        return [*super()._excluded_save_params(), "prior_policy"]

    def save(self, path: Any, exclude: Any = None, include: Any = None) -> None:
        """
        Save the model as SB3 does, with the prior's weights among the saved attributes
        (``prior_weights``) rather than as a state dict of its own: ``PPO.load`` (and rl-zoo3's
        ``-i``) then read the zip as a plain PPO model, ``KLPPO.load`` restores the prior too.

        :param path: where to write the zip
        :param exclude: attributes not to save, besides the default ones
        :param include: attributes to save even if excluded by default
        """
        self.prior_weights = {
            name: tensor.detach().cpu().numpy() for name, tensor in self.prior_policy.state_dict().items()
        }
        try:
            super().save(path, exclude=exclude, include=include)
        finally:
            del self.prior_weights

    def train(self) -> None:
        """
        Update the policy on the current rollout buffer: PPO's clipped surrogate, value and entropy
        losses, plus ``beta * KL(pi_prior || pi)`` while ``beta > 0``.
        """
        self.policy.set_training_mode(True)
        self._update_learning_rate(self.policy.optimizer)
        clip_range = self.clip_range(self._current_progress_remaining)  # type: ignore[operator]
        if self.clip_range_vf is not None:
            clip_range_vf = self.clip_range_vf(self._current_progress_remaining)  # type: ignore[operator]
        kl_coef = self.current_kl_coef()

        entropy_losses, pg_losses, value_losses, clip_fractions, prior_kls = [], [], [], [], []
        approx_kl_divs: list[float] = []
        continue_training = True
        loss = th.zeros(())
        for _ in range(self.n_epochs):
            approx_kl_divs = []
            for rollout_data in self.rollout_buffer.get(self.batch_size):
                actions = rollout_data.actions
                if isinstance(self.action_space, spaces.Discrete):
                    actions = rollout_data.actions.long().flatten()

                values, log_prob, entropy = self.policy.evaluate_actions(rollout_data.observations, actions)
                values = values.flatten()
                advantages = rollout_data.advantages
                if self.normalize_advantage and len(advantages) > 1:
                    advantages = (advantages - advantages.mean()) / (advantages.std() + 1e-8)

                ratio = th.exp(log_prob - rollout_data.old_log_prob)
                policy_loss_1 = advantages * ratio
                policy_loss_2 = advantages * th.clamp(ratio, 1 - clip_range, 1 + clip_range)
                policy_loss = -th.min(policy_loss_1, policy_loss_2).mean()
                pg_losses.append(policy_loss.item())
                clip_fractions.append(th.mean((th.abs(ratio - 1) > clip_range).float()).item())

                if self.clip_range_vf is None:
                    values_pred = values
                else:
                    values_pred = rollout_data.old_values + th.clamp(
                        values - rollout_data.old_values, -clip_range_vf, clip_range_vf
                    )
                value_loss = F.mse_loss(rollout_data.returns, values_pred)
                value_losses.append(value_loss.item())

                entropy_loss = -th.mean(-log_prob) if entropy is None else -th.mean(entropy)
                entropy_losses.append(entropy_loss.item())

                loss = policy_loss + self.ent_coef * entropy_loss + self.vf_coef * value_loss
                if kl_coef > 0:
                    prior_kl = self._prior_kl(rollout_data.observations)
                    prior_kls.append(prior_kl.item())
                    loss = loss + kl_coef * prior_kl

                with th.no_grad():
                    log_ratio = log_prob - rollout_data.old_log_prob
                    approx_kl_div = th.mean((th.exp(log_ratio) - 1) - log_ratio).cpu().numpy()
                    approx_kl_divs.append(float(approx_kl_div))
                if self.target_kl is not None and approx_kl_div > 1.5 * self.target_kl:
                    continue_training = False
                    break

                self.policy.optimizer.zero_grad()
                loss.backward()
                th.nn.utils.clip_grad_norm_(self.policy.parameters(), self.max_grad_norm)
                self.policy.optimizer.step()

            self._n_updates += 1
            if not continue_training:
                break

        explained_var = explained_variance(
            self.rollout_buffer.values.flatten(), self.rollout_buffer.returns.flatten()
        )
        self.logger.record("train/entropy_loss", np.mean(entropy_losses))
        self.logger.record("train/policy_gradient_loss", np.mean(pg_losses))
        self.logger.record("train/value_loss", np.mean(value_losses))
        self.logger.record("train/approx_kl", np.mean(approx_kl_divs))
        self.logger.record("train/clip_fraction", np.mean(clip_fractions))
        self.logger.record("train/loss", loss.item())
        self.logger.record("train/explained_variance", explained_var)
        self.logger.record("train/kl_coef", kl_coef)
        if prior_kls:
            self.logger.record("train/prior_kl", np.mean(prior_kls))
        if hasattr(self.policy, "log_std"):
            self.logger.record("train/std", th.exp(self.policy.log_std).mean().item())
        self.logger.record("train/n_updates", self._n_updates, exclude="tensorboard")
        self.logger.record("train/clip_range", clip_range)
        if self.clip_range_vf is not None:
            self.logger.record("train/clip_range_vf", clip_range_vf)

    def _prior_kl(self, observations: th.Tensor) -> th.Tensor:
        """
        :param observations: a minibatch of observations
        :return: the mean of ``KL(pi_prior(.|s) || pi(.|s))`` over the minibatch, differentiable in ``pi``
        """
        with th.no_grad():
            prior_distribution = self.prior_policy.get_distribution(observations)
        distribution = self.policy.get_distribution(observations)
        return kl_divergence(prior_distribution, distribution).mean()


def update_learning_rate_of_group(optimizer: th.optim.Optimizer, group: int, learning_rate: float) -> None:
    """
    :param optimizer: an optimiser
    :param group: the index of one of its parameter groups
    :param learning_rate: the learning rate that group gets
    """
    optimizer.param_groups[group]["lr"] = learning_rate
