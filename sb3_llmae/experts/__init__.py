"""Experts that play MiniGrid episodes for demonstrations: the planner, the BabyAI bot, an LLM, a noisy
wrapper, and :func:`make_expert`, which builds one by name."""

from typing import TYPE_CHECKING

from sb3_llmae._lazy import lazy_exports

if TYPE_CHECKING:
    from sb3_llmae.experts.babyai import BabyAIExpert
    from sb3_llmae.experts.base import Expert, ExpertEpisode, UnsupportedEnvError
    from sb3_llmae.experts.factory import EXPERT_KINDS, make_expert
    from sb3_llmae.experts.llm import LLMExpert
    from sb3_llmae.experts.noisy import NoisyExpert
    from sb3_llmae.experts.planner import PlannerExpert
    from sb3_llmae.experts.selection import planning_expert_for

__all__ = [
    "EXPERT_KINDS",
    "BabyAIExpert",
    "Expert",
    "ExpertEpisode",
    "LLMExpert",
    "NoisyExpert",
    "PlannerExpert",
    "UnsupportedEnvError",
    "make_expert",
    "planning_expert_for",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "sb3_llmae.experts.babyai": ("BabyAIExpert",),
        "sb3_llmae.experts.base": ("Expert", "ExpertEpisode", "UnsupportedEnvError"),
        "sb3_llmae.experts.factory": ("EXPERT_KINDS", "make_expert"),
        "sb3_llmae.experts.llm": ("LLMExpert",),
        "sb3_llmae.experts.noisy": ("NoisyExpert",),
        "sb3_llmae.experts.planner": ("PlannerExpert",),
        "sb3_llmae.experts.selection": ("planning_expert_for",),
    },
)
