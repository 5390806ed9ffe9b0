"""Demonstrations: containers and metadata, rolling experts out (workers, resume), and storage."""

from typing import TYPE_CHECKING

from sb3_llmae._lazy import lazy_exports

if TYPE_CHECKING:
    from sb3_llmae.demonstrations.containers import DemonstrationMetadata, Demonstrations, EpisodeRecord
    from sb3_llmae.demonstrations.rollout import GenerationInterrupted, generate_demonstrations
    from sb3_llmae.demonstrations.storage import load_demonstrations, save_demonstrations

__all__ = [
    "DemonstrationMetadata",
    "Demonstrations",
    "EpisodeRecord",
    "GenerationInterrupted",
    "generate_demonstrations",
    "load_demonstrations",
    "save_demonstrations",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "sb3_llmae.demonstrations.containers": ("DemonstrationMetadata", "Demonstrations", "EpisodeRecord"),
        "sb3_llmae.demonstrations.rollout": ("GenerationInterrupted", "generate_demonstrations"),
        "sb3_llmae.demonstrations.storage": ("load_demonstrations", "save_demonstrations"),
    },
)
