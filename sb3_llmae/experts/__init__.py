"""Experts that play MiniGrid episodes for demonstrations: the planner, an LLM, a noisy wrapper, and
:func:`make_expert`, which builds one by name."""

from typing import TYPE_CHECKING

from sb3_llmae._lazy import lazy_exports

if TYPE_CHECKING:
    from sb3_llmae.experts.base import Expert, ExpertEpisode, UnsupportedEnvError
    from sb3_llmae.experts.factory import EXPERT_KINDS, make_expert
    from sb3_llmae.experts.llm import LLMExpert
    from sb3_llmae.experts.noisy import NoisyExpert
    from sb3_llmae.experts.planner import PlannerExpert

__all__ = [
    "EXPERT_KINDS",
    "Expert",
    "ExpertEpisode",
    "LLMExpert",
    "NoisyExpert",
    "PlannerExpert",
    "UnsupportedEnvError",
    "make_expert",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "sb3_llmae.experts.base": ("Expert", "ExpertEpisode", "UnsupportedEnvError"),
        "sb3_llmae.experts.factory": ("EXPERT_KINDS", "make_expert"),
        "sb3_llmae.experts.llm": ("LLMExpert",),
        "sb3_llmae.experts.noisy": ("NoisyExpert",),
        "sb3_llmae.experts.planner": ("PlannerExpert",),
    },
)
