"""The LLM prior as a callback: behaviour cloning and critic warm-up at the start of ``learn()``, so that
rl-zoo3's hyperparameter files alone can train an LLM-initialised PPO."""

from __future__ import annotations

import logging
import os
from contextlib import ExitStack
from typing import Any

from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_llmae.demonstrations import Demonstrations, load_demonstrations
from sb3_llmae.training.bc import BCReport, actor_critic_policy
from sb3_llmae.training.critic import actor_frozen
from sb3_llmae.training.llm_init import clone_prior
from sb3_llmae.training.ppo import InitMode, check_init

logger = logging.getLogger(__name__)


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
    ``learn()`` on the same model continues from the trained weights.

    :param demonstrations: demonstrations, or the directory they were saved in (``sb3-llmae generate``)
    :param init: ``"actor"`` (keep the actor, fresh critic; the model's policy should not share its
        features extractor, as in ``default_policy_kwargs()``) or ``"full"`` (keep the whole network;
        build the model with ``default_policy_kwargs(init="full")``)
    :param bc_kwargs: keyword arguments of :func:`~sb3_llmae.training.bc.pretrain_bc`, over
        ``LLM_INIT_BC_KWARGS`` (stop at 0.15 greedy success)
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
        bc_kwargs: dict[str, Any] | None = None,
        critic_warmup_steps: int = 2048,
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
        self.bc_kwargs = dict(bc_kwargs or {})
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
            max_episode_steps=self.max_episode_steps,
            seed=self.model.seed if self.seed is None else self.seed,
        )
        if self.critic_warmup_steps > 0:
            rollout = self.on_policy_model.n_steps * self.on_policy_model.n_envs
            self.warmup_end = self.num_timesteps + -(-self.critic_warmup_steps // rollout) * rollout
            self._frozen.enter_context(actor_frozen(actor_critic_policy(self.model)))
        logger.info(
            "LLM prior: BC %d epochs, greedy success %s; critic warm-up until step %d.",
            self.report.epochs,
            "not measured" if self.report.success_rate is None else f"{self.report.success_rate:.0%}",
            self.warmup_end,
        )

    def _on_rollout_start(self) -> None:
        # The updates so far (one per rollout) ran with the actor frozen; from here on PPO moves it.
        if self.num_timesteps >= self.warmup_end:
            self._frozen.close()

    def _on_step(self) -> bool:
        return True

    def _on_training_end(self) -> None:
        self._frozen.close()
