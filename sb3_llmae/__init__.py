"""sb3-llmae: an LLM as the expert that initialises Stable-Baselines3 PPO on MiniGrid."""

from importlib.metadata import PackageNotFoundError, version

try:
    import imitation  # noqa: F401
except ImportError as error:
    raise ImportError(
        "sb3_llmae needs the 'imitation' package, installed without its stale pins "
        "(they would pull stable-baselines3 2.2 and gymnasium 0.29): "
        "pip install --no-deps imitation==1.0.1"
    ) from error

from sb3_llmae.demonstrations import Demonstrations, generate_demonstrations, load_demonstrations
from sb3_llmae.envs import make_vec_env, register_envs
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
