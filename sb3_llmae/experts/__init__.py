"""Experts that play MiniGrid episodes for demonstrations: the planner, the BabyAI bot, an LLM, a noisy
wrapper, and :func:`make_expert`, which builds one by name."""

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
