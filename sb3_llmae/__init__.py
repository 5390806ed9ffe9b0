"""sb3-llmae: an LLM as the expert that initialises Stable-Baselines3 PPO on MiniGrid."""

try:
    import imitation  # noqa: F401
except ImportError as error:
    raise ImportError(
        "sb3_llmae needs the 'imitation' package, installed without its stale pins "
        "(they would pull stable-baselines3 2.2 and gymnasium 0.29): "
        "pip install --no-deps imitation==1.0.1"
    ) from error

from sb3_llmae.demonstrations import (
    Demonstrations,
    generate_demonstrations,
    load_demonstrations,
    save_demonstrations,
)
from sb3_llmae.envs import MinigridImageWrapper, make_env, make_vec_env, register_envs
from sb3_llmae.experts import Expert, ExpertEpisode, UnsupportedEnvError
from sb3_llmae.features import MinigridFeaturesExtractor

__version__ = "0.1.0"

register_envs()

__all__ = [
    "Demonstrations",
    "Expert",
    "ExpertEpisode",
    "MinigridFeaturesExtractor",
    "MinigridImageWrapper",
    "UnsupportedEnvError",
    "__version__",
    "generate_demonstrations",
    "load_demonstrations",
    "make_env",
    "make_vec_env",
    "register_envs",
    "save_demonstrations",
]
