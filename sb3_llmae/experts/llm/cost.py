"""What an LLM generation run will cost, before it starts (from the env's real prompts), and what it did."""

from __future__ import annotations

import random
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
from minigrid.core.actions import Actions

from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.llm.expert import LLMExpert
from sb3_llmae.experts.llm.prices import TokenPrices
from sb3_llmae.experts.llm.tokens import CHARS_PER_TOKEN, approximate_prompt_tokens

# Prompt sizes are measured on this many episodes, and on this many steps of each at most: past the first
# few steps a step prompt only changes with the view (its history is capped).
SAMPLED_EPISODES = 10
SAMPLED_STEPS = 64
# Plan mode: one plan per episode when the model's plans work; re-plans add to it.
DEFAULT_PLANS_PER_EPISODE = 1
# The measuring walk turns and moves like an agent exploring (no pick-ups, no toggles).
_WALK_ACTIONS = (Actions.left, Actions.right, Actions.forward, Actions.forward)


@dataclass(frozen=True)
class CostEstimate:
    """
    The expected size of a generation run.

    :param episodes: episodes to play
    :param calls: expected model calls (no cache hits assumed)
    :param prompt_tokens: expected prompt tokens
    :param completion_tokens: expected completion tokens (an upper bound when taken from ``max_tokens``)
    :param cost: expected USD, when prices are known
    :param calls_per_episode: calls of one episode
    :param prompt_tokens_per_call: mean prompt tokens of the measured prompts
    :param completion_tokens_per_call: completion tokens assumed per call
    :param basis: how the figures were reached, in words
    """

    episodes: int
    calls: int
    prompt_tokens: int
    completion_tokens: int
    cost: float | None
    calls_per_episode: float
    prompt_tokens_per_call: float
    completion_tokens_per_call: int
    basis: str

    def as_dict(self) -> dict[str, Any]:
        """:return: the estimate as a JSON-serialisable dict"""
        return asdict(self)


def estimate_generation_cost(
    env_id: str,
    expert: LLMExpert,
    n_episodes: int,
    seed: int = 0,
    max_episode_steps: int | None = None,
    steps_per_episode: int | None = None,
    plans_per_episode: int = DEFAULT_PLANS_PER_EPISODE,
    completion_tokens_per_call: int | None = None,
    prices: TokenPrices | None = None,
    env_kwargs: dict[str, Any] | None = None,
) -> CostEstimate:
    """
    Estimate the calls, tokens and cost of ``generate_demonstrations(env_id, expert, n_episodes, ...)``
    without playing an episode or calling the model.

    Prompt sizes are measured on the env's real prompts: ``plan`` prompts at the start of the run's first
    episodes; ``step`` prompts along a seeded random walk in them (the history grows as in a real episode).
    Tokens are counted as ``CHARS_PER_TOKEN`` characters each, a rule of thumb that tokenizers miss by
    some 10-20% either way. Step mode assumes every episode runs ``steps_per_episode`` steps, by default
    the env's step limit (an upper bound: a good model ends episodes sooner).

    :param env_id: a MiniGrid / BabyAI id
    :param expert: the LLM expert (its mode, prompts, history length and ``max_tokens`` matter)
    :param n_episodes: episodes to play
    :param seed: seed of the first episode
    :param max_episode_steps: the run's step limit; ``None`` keeps the env's own
    :param steps_per_episode: expected steps of an episode in step mode; ``None`` for the step limit
    :param plans_per_episode: expected plan requests of an episode in plan mode (re-plans included)
    :param completion_tokens_per_call: expected completion tokens of a call; ``None`` for ``max_tokens``
    :param prices: token prices, for a cost in USD
    :param env_kwargs: passed to the env constructor
    :return: the estimate
    """
    if n_episodes <= 0:
        raise ValueError(f"n_episodes must be positive, got {n_episodes}.")
    if plans_per_episode <= 0:
        raise ValueError(f"plans_per_episode must be positive, got {plans_per_episode}.")
    if steps_per_episode is not None and steps_per_episode <= 0:
        raise ValueError(f"steps_per_episode must be positive, got {steps_per_episode}.")
    if completion_tokens_per_call is None:
        completion_tokens_per_call = expert.client.settings.max_tokens
        if completion_tokens_per_call is None:
            raise ValueError(
                "max_tokens is None (no cap on replies): pass completion_tokens_per_call "
                "(--completion-tokens-estimate) to estimate completion tokens."
            )
    env = make_env(env_id, max_episode_steps=max_episode_steps, **(env_kwargs or {}))
    try:
        spec_limit = env.spec.max_episode_steps if env.spec is not None else None
        step_limit = int(spec_limit or unwrap_minigrid(env).max_steps)
        if expert.mode == "step":
            steps = steps_per_episode if steps_per_episode is not None else step_limit
            calls_per_episode = float(steps)
            basis = f"{steps} steps per episode ({'given' if steps_per_episode else 'the step limit'})"
        else:
            calls_per_episode = float(plans_per_episode)
            basis = f"{plans_per_episode} plan request(s) per episode"
        episode_seeds = range(seed, seed + min(n_episodes, SAMPLED_EPISODES))
        prompt_sizes = _measure_prompt_sizes(
            env, expert, episode_seeds, min(int(calls_per_episode), SAMPLED_STEPS)
        )
    finally:
        env.close()
    prompt_per_call = sum(prompt_sizes) / len(prompt_sizes)
    calls = round(n_episodes * calls_per_episode)
    prompt_tokens = round(calls * prompt_per_call)
    completion_tokens = calls * completion_tokens_per_call
    return CostEstimate(
        episodes=n_episodes,
        calls=calls,
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        cost=prices.cost(prompt_tokens, completion_tokens) if prices is not None else None,
        calls_per_episode=calls_per_episode,
        prompt_tokens_per_call=prompt_per_call,
        completion_tokens_per_call=completion_tokens_per_call,
        basis=(
            f"{basis}; prompt sizes measured on {len(prompt_sizes)} real prompts at {CHARS_PER_TOKEN:g} "
            f"characters per token; {completion_tokens_per_call} completion tokens per call"
        ),
    )


def _measure_prompt_sizes(env: gym.Env, expert: LLMExpert, seeds: range, max_steps: int) -> list[int]:
    """
    :param env: the run's env
    :param expert: the LLM expert whose prompts to measure
    :param seeds: the episodes to measure on
    :param max_steps: in step mode, the most steps of an episode to measure
    :return: the approximate token counts of the prompts: one plan prompt per episode, or the step
        prompts along a seeded random walk
    """
    prompt_sizes: list[int] = []
    for episode_seed in seeds:
        env.reset(seed=episode_seed)
        minigrid_env = unwrap_minigrid(env)
        if expert.mode == "plan":
            prompt_sizes.append(approximate_prompt_tokens(expert.plan_messages(minigrid_env)))
            continue
        rng = random.Random(episode_seed)
        history: list[int] = []
        for _ in range(max_steps):
            prompt_sizes.append(approximate_prompt_tokens(expert.step_messages(minigrid_env, history)))
            action = int(rng.choice(_WALK_ACTIONS))
            _, _, terminated, truncated, _ = env.step(action)
            history.append(action)
            if terminated or truncated:
                break
    return prompt_sizes
