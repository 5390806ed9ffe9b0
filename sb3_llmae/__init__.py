"""sb3-llmae: an LLM as the expert that initialises Stable-Baselines3 PPO on MiniGrid."""

try:
    import imitation  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "sb3_llmae needs the 'imitation' package, installed without its stale pins: "
        "pip install --no-deps imitation==1.0.1"
    ) from error

from sb3_llmae.envs import MinigridImageWrapper, make_env, make_vec_env, register_envs
from sb3_llmae.experts import Expert, ExpertEpisode, UnsupportedEnvError

__version__ = "0.1.0"

register_envs()

__all__ = [
    "Expert",
    "ExpertEpisode",
    "MinigridImageWrapper",
    "UnsupportedEnvError",
    "__version__",
    "make_env",
    "make_vec_env",
    "register_envs",
]
