"""Experts that play MiniGrid episodes for demonstrations: the planner, an LLM, and a noisy wrapper."""

from sb3_llmae.experts.base import Expert, ExpertEpisode, UnsupportedEnvError
from sb3_llmae.experts.llm import LLMExpert
from sb3_llmae.experts.noisy import NoisyExpert
from sb3_llmae.experts.planner import PlannerExpert

__all__ = ["Expert", "ExpertEpisode", "LLMExpert", "NoisyExpert", "PlannerExpert", "UnsupportedEnvError"]
