"""Demonstrations: containers and metadata, rolling experts out (workers, resume), and storage."""

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
