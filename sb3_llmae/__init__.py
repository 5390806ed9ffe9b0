"""sb3-llmae: an LLM as the expert that initialises Stable-Baselines3 PPO on MiniGrid.

``import sb3_llmae`` registers the ``sb3_llmae/<id>`` env ids (gymnasium and minigrid only); the
exported names load their modules (torch, SB3, imitation) at first use (PEP 562), so that the CLI's
``--help`` answers at once. A missing ``imitation`` is named, with its install command, at the first use
of an exported name.
"""

from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from sb3_llmae._lazy import lazy_exports
from sb3_llmae.registration import register_envs

if TYPE_CHECKING:
    from sb3_llmae.demonstrations import Demonstrations, generate_demonstrations, load_demonstrations
    from sb3_llmae.envs import make_vec_env
    from sb3_llmae.experts import Expert
    from sb3_llmae.features import MinigridFeaturesExtractor
    from sb3_llmae.training import BCConfig, default_policy_kwargs, llm_init_ppo, make_ppo, pretrain_bc
    from sb3_llmae.training.callbacks import (
        LLMInitCallback,
        SampleEfficiencyCallback,
        VisitationHeatmapCallback,
    )

try:
    __version__ = version("sb3-llmae")
except PackageNotFoundError:  # imported from a source tree that was never installed
    __version__ = "0+unknown"

register_envs()

# Entry and extension points only (default_policy_kwargs: rl-zoo3's YAML reads it from here); everything
# else is imported from its subpackage (sb3_llmae.envs, .experts, .experts.llm, .demonstrations,
# .training, .training.callbacks, .record).
__all__ = [
    "BCConfig",
    "Demonstrations",
    "Expert",
    "LLMInitCallback",
    "MinigridFeaturesExtractor",
    "SampleEfficiencyCallback",
    "VisitationHeatmapCallback",
    "__version__",
    "default_policy_kwargs",
    "generate_demonstrations",
    "llm_init_ppo",
    "load_demonstrations",
    "make_ppo",
    "make_vec_env",
    "pretrain_bc",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "sb3_llmae.demonstrations": ("Demonstrations", "generate_demonstrations", "load_demonstrations"),
        "sb3_llmae.envs": ("make_vec_env",),
        "sb3_llmae.experts": ("Expert",),
        "sb3_llmae.features": ("MinigridFeaturesExtractor",),
        "sb3_llmae.training": (
            "BCConfig",
            "default_policy_kwargs",
            "llm_init_ppo",
            "make_ppo",
            "pretrain_bc",
        ),
        "sb3_llmae.training.callbacks": (
            "LLMInitCallback",
            "SampleEfficiencyCallback",
            "VisitationHeatmapCallback",
        ),
    },
)
