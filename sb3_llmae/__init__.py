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

from sb3_llmae.demonstrations import (
    Demonstrations,
    generate_demonstrations,
    load_demonstrations,
    save_demonstrations,
)
from sb3_llmae.envs import MinigridImageWrapper, make_env, make_vec_env, register_envs
from sb3_llmae.experts import (
    BabyAIExpert,
    Expert,
    ExpertEpisode,
    LLMExpert,
    NoisyExpert,
    PlannerExpert,
    UnsupportedEnvError,
)
from sb3_llmae.experts.llm import ChatClient, ChatSettings, LLMEndpointError, PromptTemplate, ResponseCache
from sb3_llmae.features import MinigridFeaturesExtractor, MissionGridFeaturesExtractor
from sb3_llmae.training import (
    KLPPO,
    REFERENCE_PPO_KWARGS,
    BCReport,
    EvaluationResult,
    default_policy_kwargs,
    evaluate_success,
    llm_init_ppo,
    load_ppo,
    make_ppo,
    pretrain_bc,
    warm_up_critic,
)
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

__all__ = [
    "KLPPO",
    "REFERENCE_PPO_KWARGS",
    "BCReport",
    "BabyAIExpert",
    "ChatClient",
    "ChatSettings",
    "Demonstrations",
    "EvaluationResult",
    "Expert",
    "ExpertEpisode",
    "LLMEndpointError",
    "LLMExpert",
    "LLMInitCallback",
    "MinigridFeaturesExtractor",
    "MinigridImageWrapper",
    "MissionGridFeaturesExtractor",
    "NoisyExpert",
    "PlannerExpert",
    "PromptTemplate",
    "ResponseCache",
    "SampleEfficiencyCallback",
    "UnsupportedEnvError",
    "VisitationHeatmapCallback",
    "__version__",
    "default_policy_kwargs",
    "evaluate_success",
    "generate_demonstrations",
    "llm_init_ppo",
    "load_demonstrations",
    "load_ppo",
    "make_env",
    "make_ppo",
    "make_vec_env",
    "pretrain_bc",
    "register_envs",
    "save_demonstrations",
    "warm_up_critic",
]
