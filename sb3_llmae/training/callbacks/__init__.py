"""Callbacks for SB3's ``learn()`` and rl-zoo3's ``callback:`` key: sample-efficiency evaluations,
visitation heatmaps, and the LLM prior (BC and critic warm-up) at the start of training."""

from typing import TYPE_CHECKING

from sb3_llmae._lazy import lazy_exports

if TYPE_CHECKING:
    from sb3_llmae.training.callbacks.bc_init import LLMInitCallback
    from sb3_llmae.training.callbacks.heatmap import VisitationHeatmapCallback
    from sb3_llmae.training.callbacks.sample_efficiency import SampleEfficiencyCallback

__all__ = ["LLMInitCallback", "SampleEfficiencyCallback", "VisitationHeatmapCallback"]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "sb3_llmae.training.callbacks.bc_init": ("LLMInitCallback",),
        "sb3_llmae.training.callbacks.heatmap": ("VisitationHeatmapCallback",),
        "sb3_llmae.training.callbacks.sample_efficiency": ("SampleEfficiencyCallback",),
    },
)
