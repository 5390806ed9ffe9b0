"""Which model-free expert plays an env: the BabyAI bot for BabyAI levels, the planner for the rest."""

from __future__ import annotations

from types import MappingProxyType

from sb3_llmae.envs import check_env_id
from sb3_llmae.experts.babyai import BOT_UNSOLVABLE_LEVELS, BabyAIExpert
from sb3_llmae.experts.base import Expert, UnsupportedEnvError
from sb3_llmae.experts.planner import PlannerExpert

# MiniGrid families no expert of the plugin plays, by id prefix, with the reason.
UNSUPPORTED_FAMILIES: MappingProxyType[str, str] = MappingProxyType(
    {
        "MiniGrid-Memory": (
            "its mission ('go to the matching object at the end of the hallway') names an object seen only "
            "at the start; an expert reading the full grid would choose from what the policy no longer "
            "sees, so a feed-forward policy cannot imitate its choice, and BC trains no recurrent policy"
        ),
        "MiniGrid-PutNear": (
            "the env ends the episode on any drop and on picking up anything but the object to move, "
            "so the BabyAI bot, which moves blockers out of its way, fails there, and the planner has "
            "no 'put near' stage; the BabyAI levels BabyAI-PutNextLocal-v0 / BabyAI-PutNextS*-v0 ask "
            "the same and are supported"
        ),
    }
)


def unsupported_reason(env_id: str) -> str | None:
    """
    :param env_id: a MiniGrid / BabyAI id
    :return: why no expert of the plugin plays it, or ``None`` if one may (the planner still reads the
        mission of each episode, and refuses one it does not know)
    """
    bare_id = check_env_id(env_id)
    if bare_id in BOT_UNSOLVABLE_LEVELS:
        return "minigrid's BabyAIBot does not solve it (see its documentation)"
    return next(
        (reason for prefix, reason in UNSUPPORTED_FAMILIES.items() if bare_id.startswith(prefix)), None
    )


def planning_expert_for(env_id: str) -> Expert:
    """
    The expert that plays ``env_id`` without an LLM: :class:`~sb3_llmae.experts.babyai.BabyAIExpert`
    for ``BabyAI-*`` ids, :class:`~sb3_llmae.experts.planner.PlannerExpert` otherwise.

    :param env_id: a MiniGrid / BabyAI id (``sb3_llmae/`` prefix allowed)
    :return: the expert
    :raises UnsupportedEnvError: for env families no expert plays, with the reason
    :raises ValueError: for an unknown id
    """
    bare_id = check_env_id(env_id)
    reason = unsupported_reason(bare_id)
    if reason is not None:
        raise UnsupportedEnvError(f"No expert of sb3-llmae plays {bare_id}: {reason}.")
    if bare_id.startswith("BabyAI-"):
        return BabyAIExpert()
    return PlannerExpert()
