"""The LLM prior as a callback: behaviour cloning and critic warm-up at the start of ``learn()``, so that
rl-zoo3's hyperparameter files alone can train an LLM-initialised PPO."""

from __future__ import annotations

import dataclasses
import os
import warnings
from contextlib import ExitStack

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_llmae.demonstrations import Demonstrations, load_demonstrations
from sb3_llmae.training.bc import BCReport, actor_critic_policy
from sb3_llmae.training.config import BC_EVALUATION, CRITIC_WARMUP_STEPS, split_bc_settings
from sb3_llmae.training.critic import actor_frozen
from sb3_llmae.training.llm_init import BCSettings, clone_prior
from sb3_llmae.training.ppo import InitMode, check_init


class LLMInitCallback(BaseCallback):
    """
    Turn the model being trained into an LLM-initialised one when training starts: behaviour-clone
    the demonstrations into its policy (as :func:`~sb3_llmae.training.llm_init.llm_init_ppo` does,
    the same ``bc_kwargs``), draw the critic afresh with ``init="actor"``, then keep the actor frozen
    for the first ``critic_warmup_steps`` env steps (whole rollouts), so that those updates fit only
    the value function to the cloned policy. The warm-up steps are training steps: they count in
    ``num_timesteps`` and in the training budget.

    In rl-zoo3, list it first under ``callback:`` (before any callback that evaluates at the start),
    e.g. ``- sb3_llmae.LLMInitCallback: {demonstrations: demos/doorkey8}``. It acts once: a second
    ``learn()`` on the same model continues from the trained weights. What BC did goes to the model's
    logger (BC's ``bc/*`` at each of its evaluations, then ``llm_init/bc_epochs``, ``llm_init/bc_accuracy``,
    ``llm_init/bc_success_rate``, ``llm_init/critic_warmup_until``): rl-zoo3's console and TensorBoard.

    :param demonstrations: demonstrations, or the directory they were saved in (``sb3-llmae generate``)
    :param init: ``"actor"`` (keep the actor, fresh critic; the model's policy should not share its
        features extractor, as in ``default_policy_kwargs()``) or ``"full"`` (keep the whole network;
        build the model with ``default_policy_kwargs(init="full")``)
    :param bc_kwargs: BC settings: a :class:`~sb3_llmae.training.config.BCConfig` or a mapping of its
        fields, as rl-zoo3's YAML gives it (``None``: its defaults)
    :param critic_warmup_steps: env steps with the actor frozen (rounded up to whole rollouts); 0: none
    :param max_episode_steps: step limit of the episodes that measure BC's success rate; ``None`` keeps
        the env's own
    :param seed: seed of the order of BC batches (``None``: the model's seed)
    :param verbose: verbosity
    """

    def __init__(
        self,
        demonstrations: Demonstrations | str | os.PathLike[str],
        init: InitMode = "actor",
        bc_kwargs: BCSettings | None = None,
        critic_warmup_steps: int = CRITIC_WARMUP_STEPS,
        max_episode_steps: int | None = None,
        seed: int | None = None,
        verbose: int = 0,
    ) -> None:
        super().__init__(verbose=verbose)
        if check_init(init) == "scratch":
            raise ValueError(
                "LLMInitCallback initialises from demonstrations: init must be 'actor' or 'full'."
            )
        if critic_warmup_steps < 0:
            raise ValueError(f"critic_warmup_steps must be non-negative, got {critic_warmup_steps}.")
        self.demonstrations = (
            demonstrations
            if isinstance(demonstrations, Demonstrations)
            else load_demonstrations(demonstrations)
        )
        self.init = init
        split_bc_settings(bc_kwargs)  # a bad setting fails here, before training starts
        self.bc_kwargs = bc_kwargs
        self.critic_warmup_steps = critic_warmup_steps
        self.max_episode_steps = max_episode_steps
        self.seed = seed
        self.report: BCReport | None = None
        self.warmup_end = 0
        self._frozen = ExitStack()

    def _init_callback(self) -> None:
        if not isinstance(self.model, OnPolicyAlgorithm):
            raise TypeError(
                "LLMInitCallback trains an on-policy model (PPO, MaskablePPO), "
                f"got {type(self.model).__name__}."
            )
        self.on_policy_model = self.model
        policy = actor_critic_policy(self.model)
        if self.init == "full" and not policy.share_features_extractor:
            raise ValueError(
                "init='full' keeps one features extractor for actor and critic, but the model's policy has "
                "two: build it with policy_kwargs=default_policy_kwargs(init='full') or use init='actor'."
            )
        self.demonstrations.check_observation_space(self.model.observation_space)

    def _on_training_start(self) -> None:
        if self.report is not None:
            # A later learn() on the same model: the prior is in place; finish a warm-up cut short.
            if self.num_timesteps < self.warmup_end:
                self._frozen.enter_context(actor_frozen(actor_critic_policy(self.model)))
            return
        self.report = clone_prior(
            self.on_policy_model,
            self.demonstrations,
            init=self.init,
            bc_kwargs=self.bc_kwargs,
            evaluation=dataclasses.replace(BC_EVALUATION, max_episode_steps=self.max_episode_steps),
            seed=self.model.seed if self.seed is None else self.seed,
            sb3_logger=self.logger,
        )
        if self.critic_warmup_steps > 0:
            rollout = self.on_policy_model.n_steps * self.on_policy_model.n_envs
            self.warmup_end = self.num_timesteps + -(-self.critic_warmup_steps // rollout) * rollout
            self._frozen.enter_context(actor_frozen(actor_critic_policy(self.model)))
            self._warn_if_warmup_dominates()
        # In the model's logger, so that rl-zoo3's console (and TensorBoard) show what the prior is.
        self.logger.record("llm_init/bc_epochs", self.report.epochs)
        self.logger.record("llm_init/bc_accuracy", self.report.accuracy)
        if self.report.success_rate is not None:
            self.logger.record("llm_init/bc_success_rate", self.report.success_rate)
        self.logger.record("llm_init/critic_warmup_until", self.warmup_end)
        self.logger.dump(self.num_timesteps)

    def _warn_if_warmup_dominates(self) -> None:
        """Warn when the warm-up takes half of this ``learn()``'s budget or more (rl-zoo3's -n)."""
        total = self.locals.get("total_timesteps")
        if total is None:
            return
        budget, warmup = int(total) - self.num_timesteps, self.warmup_end - self.num_timesteps
        if 2 * warmup >= budget:
            warnings.warn(
                f"LLMInitCallback: the critic warm-up takes {warmup:,} of this learn()'s {budget:,} env "
                f"steps (the budget, rl-zoo3's n_timesteps, counts them), leaving "
                f"{max(budget - warmup, 0):,} for PPO to move the actor: raise n_timesteps (rl-zoo3's -n) "
                "or lower critic_warmup_steps.",
                stacklevel=2,
            )

    def _on_rollout_start(self) -> None:
        # The updates so far (one per rollout) ran with the actor frozen; from here on PPO moves it.
        if self.num_timesteps >= self.warmup_end:
            self._frozen.close()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._frozen.close()
