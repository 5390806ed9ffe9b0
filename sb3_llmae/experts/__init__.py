"""Experts that play MiniGrid episodes for demonstrations: the planner, the BabyAI bot, an LLM, and a
noisy wrapper."""

from sb3_llmae.experts.babyai import BabyAIExpert
from sb3_llmae.experts.base import Expert, ExpertEpisode, UnsupportedEnvError
from sb3_llmae.experts.llm import LLMExpert
from sb3_llmae.experts.noisy import NoisyExpert
from sb3_llmae.experts.planner import PlannerExpert
from sb3_llmae.experts.selection import planning_expert_for

__all__ = [
    "BabyAIExpert",
    "Expert",
    "ExpertEpisode",
    "LLMExpert",
    "NoisyExpert",
    "PlannerExpert",
    "UnsupportedEnvError",
    "planning_expert_for",
]
