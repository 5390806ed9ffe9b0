"""Training: the PPO builder and loader, behaviour cloning, critic warm-up, KL-to-prior PPO,
LLM-initialised PPO, the play loop and evaluation, and their typed settings."""

from typing import TYPE_CHECKING

from sb3_llmae._lazy import lazy_exports

if TYPE_CHECKING:
    from sb3_llmae.training.bc import BCReport, pretrain_bc
    from sb3_llmae.training.config import BC_EVALUATION, CRITIC_WARMUP_STEPS, BCConfig, EvalConfig, KLConfig
    from sb3_llmae.training.critic import warm_up_critic
    from sb3_llmae.training.evaluation import EvaluationResult, PlayedEpisode, evaluate_success, play_episodes
    from sb3_llmae.training.kl_ppo import KLPPO
    from sb3_llmae.training.llm_init import llm_init_ppo
    from sb3_llmae.training.ppo import (
        INIT_MODES,
        REFERENCE_N_ENVS,
        REFERENCE_PPO_KWARGS,
        default_policy_kwargs,
        load_ppo,
        make_ppo,
        saved_algo,
    )

__all__ = [
    "BC_EVALUATION",
    "CRITIC_WARMUP_STEPS",
    "INIT_MODES",
    "KLPPO",
    "REFERENCE_N_ENVS",
    "REFERENCE_PPO_KWARGS",
    "BCConfig",
    "BCReport",
    "EvalConfig",
    "EvaluationResult",
    "KLConfig",
    "PlayedEpisode",
    "default_policy_kwargs",
    "evaluate_success",
    "llm_init_ppo",
    "load_ppo",
    "make_ppo",
    "play_episodes",
    "pretrain_bc",
    "saved_algo",
    "warm_up_critic",
]

__getattr__, __dir__ = lazy_exports(
    __name__,
    {
        "sb3_llmae.training.bc": ("BCReport", "pretrain_bc"),
        "sb3_llmae.training.config": (
            "BC_EVALUATION",
            "CRITIC_WARMUP_STEPS",
            "BCConfig",
            "EvalConfig",
            "KLConfig",
        ),
        "sb3_llmae.training.critic": ("warm_up_critic",),
        "sb3_llmae.training.evaluation": (
            "EvaluationResult",
            "PlayedEpisode",
            "evaluate_success",
            "play_episodes",
        ),
        "sb3_llmae.training.kl_ppo": ("KLPPO",),
        "sb3_llmae.training.llm_init": ("llm_init_ppo",),
        "sb3_llmae.training.ppo": (
            "INIT_MODES",
            "REFERENCE_N_ENVS",
            "REFERENCE_PPO_KWARGS",
            "default_policy_kwargs",
            "load_ppo",
            "make_ppo",
            "saved_algo",
        ),
    },
)
