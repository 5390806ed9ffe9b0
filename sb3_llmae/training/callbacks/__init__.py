"""Callbacks for SB3's ``learn()`` and rl-zoo3's ``callback:`` key: sample-efficiency evaluations,
visitation heatmaps, and the LLM prior (BC and critic warm-up) at the start of training."""

from sb3_llmae.training.callbacks.bc_init import LLMInitCallback
from sb3_llmae.training.callbacks.heatmap import VisitationHeatmapCallback
from sb3_llmae.training.callbacks.sample_efficiency import SampleEfficiencyCallback

__all__ = ["LLMInitCallback", "SampleEfficiencyCallback", "VisitationHeatmapCallback"]
