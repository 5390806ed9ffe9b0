"""Training: the PPO builder, behaviour cloning, critic warm-up, KL-to-prior PPO, LLM-initialised PPO
and evaluation."""

from sb3_llmae.training.bc import BCReport, pretrain_bc
from sb3_llmae.training.critic import warm_up_critic
from sb3_llmae.training.evaluation import EvaluationResult, evaluate_success
from sb3_llmae.training.kl_ppo import KLPPO
from sb3_llmae.training.llm_init import LLM_INIT_BC_KWARGS, LLM_INIT_PPO_KWARGS, llm_init_ppo
from sb3_llmae.training.ppo import (
    INIT_MODES,
    REFERENCE_N_ENVS,
    REFERENCE_PPO_KWARGS,
    default_policy_kwargs,
    load_ppo,
    make_ppo,
)

__all__ = [
    "INIT_MODES",
    "KLPPO",
    "LLM_INIT_BC_KWARGS",
    "LLM_INIT_PPO_KWARGS",
    "REFERENCE_N_ENVS",
    "REFERENCE_PPO_KWARGS",
    "BCReport",
    "EvaluationResult",
    "default_policy_kwargs",
    "evaluate_success",
    "llm_init_ppo",
    "load_ppo",
    "make_ppo",
    "pretrain_bc",
    "warm_up_critic",
]
