"""sb3-llmae: an LLM as the expert that initialises Stable-Baselines3 PPO on MiniGrid."""

try:
    import imitation  # noqa: F401
except ImportError as error:
    raise ImportError(
        "sb3_llmae needs the 'imitation' package, installed without its stale pins "
        "(they would pull stable-baselines3 2.2 and gymnasium 0.29): "
        "pip install --no-deps imitation==1.0.1"
    ) from error

from sb3_llmae.critic import warm_up_critic
from sb3_llmae.demonstrations import (
    Demonstrations,
    generate_demonstrations,
    load_demonstrations,
    save_demonstrations,
)
from sb3_llmae.envs import MinigridImageWrapper, make_env, make_vec_env, register_envs
from sb3_llmae.evaluation import EvaluationResult, evaluate_success
from sb3_llmae.experts import Expert, ExpertEpisode, UnsupportedEnvError
from sb3_llmae.experts.llm import LLMExpert
from sb3_llmae.experts.planner import PlannerExpert
from sb3_llmae.features import MinigridFeaturesExtractor
from sb3_llmae.init import REFERENCE_PPO_KWARGS, llm_init_ppo
from sb3_llmae.language import (
    PLAN_TEMPLATE,
    STEP_TEMPLATE,
    PromptTemplate,
    describe_full_map,
    describe_view,
    parse_action,
    parse_action_list,
)
from sb3_llmae.llm import ChatClient, LLMEndpointError, LLMRequestError, ResponseCache
from sb3_llmae.pretrain import BCReport, pretrain_bc

__version__ = "0.1.0"

register_envs()

__all__ = [
    "PLAN_TEMPLATE",
    "REFERENCE_PPO_KWARGS",
    "STEP_TEMPLATE",
    "BCReport",
    "ChatClient",
    "Demonstrations",
    "EvaluationResult",
    "Expert",
    "ExpertEpisode",
    "LLMEndpointError",
    "LLMExpert",
    "LLMRequestError",
    "MinigridFeaturesExtractor",
    "MinigridImageWrapper",
    "PlannerExpert",
    "PromptTemplate",
    "ResponseCache",
    "UnsupportedEnvError",
    "__version__",
    "describe_full_map",
    "describe_view",
    "evaluate_success",
    "generate_demonstrations",
    "llm_init_ppo",
    "load_demonstrations",
    "make_env",
    "make_vec_env",
    "parse_action",
    "parse_action_list",
    "pretrain_bc",
    "register_envs",
    "save_demonstrations",
    "warm_up_critic",
]
