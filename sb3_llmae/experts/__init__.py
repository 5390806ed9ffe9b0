"""Experts that play MiniGrid tasks and whose successful episodes become demonstrations."""

from sb3_llmae.experts.base import Expert, ExpertEpisode, UnsupportedEnvError

__all__ = ["Expert", "ExpertEpisode", "UnsupportedEnvError"]
