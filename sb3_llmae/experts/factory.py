"""Build an expert by name: the planner (the BabyAI bot on BabyAI levels) or an LLM, optionally wrapped in
random actions."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from sb3_llmae.experts.base import Expert
from sb3_llmae.experts.llm.batch import check_batchable
from sb3_llmae.experts.llm.endpoint import endpoint_is_configured
from sb3_llmae.experts.llm.expert import DEFAULT_LLM_MODE, LLMExpert, LLMMode
from sb3_llmae.experts.llm.prices import TokenPrices
from sb3_llmae.experts.llm.settings import ChatSettings
from sb3_llmae.experts.noisy import NoisyExpert
from sb3_llmae.experts.planner import PlannerExpert
from sb3_llmae.experts.selection import planning_expert_for

ExpertKind = Literal["planner", "llm"]
EXPERT_KINDS: tuple[str, ...] = ("planner", "llm")
# A dry run's expert only builds prompts and needs no endpoint: this address is never contacted.
DRY_RUN_BASE_URL = "http://127.0.0.1:9/v1"


def make_expert(
    kind: ExpertKind,
    *,
    env_id: str | None = None,
    model: str | None = None,
    mode: LLMMode = DEFAULT_LLM_MODE,
    base_url: str | None = None,
    settings: ChatSettings | None = None,
    cache: str | Path | None = None,
    prices: TokenPrices | None = None,
    noise: float = 0.0,
    noise_seed: int = 0,
    batch: bool = False,
    dry_run: bool = False,
) -> Expert:
    """
    The expert ``kind`` names, as the ``generate`` command builds it.

    :param kind: ``"planner"`` (search on the full grid state; minigrid's BabyAI bot on ``BabyAI-*`` levels)
        or ``"llm"`` (asks a model)
    :param env_id: the env the planner will play, to choose between the planner and the BabyAI bot and to
        refuse env families neither plays (``None``: the planner)
    :param model: the model name as the endpoint knows it (needed by ``kind="llm"``, unused by the planner)
    :param mode: one request per step (``"step"``) or one plan per episode (``"plan"``)
    :param base_url: the OpenAI-compatible endpoint; defaults to ``$OPENAI_BASE_URL``
    :param settings: sampling, timeout, retry and rate-limit settings (:class:`ChatSettings`' defaults
        when ``None``)
    :param cache: the SQLite response cache file, ``None`` for none
    :param prices: token prices, for the cost figures of the expert's usage
    :param noise: probability of a uniformly random action instead of the expert's at each step; 0 for none
    :param noise_seed: seed of those random actions
    :param batch: check that the expert can fill its cache through the Batch API (plan mode, a cache)
    :param dry_run: an expert that only builds prompts (for a cost estimate): no cache, and a placeholder
        endpoint when none is configured
    :return: the expert, wrapped in a :class:`NoisyExpert` when ``noise`` is not 0
    :raises ValueError: for an unknown kind, a missing model, or ``batch`` / ``dry_run`` for the planner
    :raises UnsupportedEnvError: for an env family no model-free expert plays, with the reason
    """
    if kind == "planner":
        given = [name for name, value in (("batch", batch), ("dry_run", dry_run)) if value]
        if given:
            raise ValueError(f"{' and '.join(given)} only apply to kind='llm': the planner calls no model.")
        expert: Expert = PlannerExpert() if env_id is None else planning_expert_for(env_id)
    elif kind == "llm":
        expert = _make_llm_expert(model, mode, base_url, settings, cache, prices, batch, dry_run)
    else:
        raise ValueError(f"Unknown expert kind {kind!r}: choose one of {', '.join(EXPERT_KINDS)}.")
    return NoisyExpert(expert, noise, seed=noise_seed) if noise != 0 else expert


def _make_llm_expert(
    model: str | None,
    mode: LLMMode,
    base_url: str | None,
    settings: ChatSettings | None,
    cache: str | Path | None,
    prices: TokenPrices | None,
    batch: bool,
    dry_run: bool,
) -> LLMExpert:
    if not model:
        raise ValueError(
            "The LLM expert needs a model name (--model NAME), as the endpoint knows it, e.g. llama3.1."
        )
    if dry_run:
        cache = None
        if not endpoint_is_configured(base_url):
            base_url = DRY_RUN_BASE_URL
    expert = LLMExpert(model, mode=mode, base_url=base_url, settings=settings, cache=cache, prices=prices)
    if batch:
        check_batchable(expert)
    return expert
