"""``sb3-llmae pretrain``: a PPO model behaviour-cloned on demonstrations, its critic warmed up, saved."""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

from sb3_llmae.cli.checks import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, PROBABILITY, check_ranges
from sb3_llmae.cli.config_flags import (
    DefaultsHelpFormatter,
    add_config_flags,
    config_from_args,
    optional_float,
    optional_int,
)
from sb3_llmae.cli.outputs import check_output_file, save_model
from sb3_llmae.training.config import CRITIC_WARMUP_STEPS, REFERENCE_N_ENVS, BCConfig, KLConfig

__all__ = ["BC_FLAGS", "KL_FLAGS", "add_pretrain_parser", "cmd_pretrain", "optional_float", "optional_int"]

# The numeric flags' ranges, checked before BC starts (--n-envs and --warmup-steps in cmd_pretrain).
RANGES = {
    "--bc-epochs": AT_LEAST_ONE,
    "--bc-batch-size": AT_LEAST_ONE,
    "--bc-learning-rate": POSITIVE,
    "--bc-eval-every": AT_LEAST_ONE,
    "--stop-at-success": PROBABILITY,
    "--kl-coef": NON_NEGATIVE,
    "--kl-decay-steps": AT_LEAST_ONE,
    "--critic-learning-rate": POSITIVE,
}

# BCConfig field -> flag (the flag names of earlier versions).
BC_FLAGS = {
    "stop_at_success": "--stop-at-success",
    "epochs": "--bc-epochs",
    "batch_size": "--bc-batch-size",
    "learning_rate": "--bc-learning-rate",
    "eval_every": "--bc-eval-every",
    "patience": "--bc-patience",
    "max_entropy": "--bc-max-entropy",
}
KL_FLAGS = {
    name: f"--{name.replace('_', '-')}" for name in ("kl_coef", "kl_decay_steps", "critic_learning_rate")
}
BC_HELP = {
    "stop_at_success": "stop BC once the greedy success rate reaches this ('none': run every epoch)",
    "epochs": "largest number of BC epochs",
    "batch_size": "BC batch size",
    "learning_rate": "BC learning rate (Adam)",
    "eval_every": "BC epochs between greedy-success evaluations",
    "patience": "stop BC after this many evaluations without a better greedy success rate ('none': never)",
    "max_entropy": "cap on the cloned actor's mean action entropy in nats, met by a logit temperature "
    "('none': no cap)",
}


def cmd_pretrain(args: argparse.Namespace) -> int:
    """BC-pretrain a PPO model on demonstrations, warm its critic up, and save it."""
    check_ranges(args, RANGES)
    from sb3_llmae.training.llm_init import llm_init_ppo

    out = check_output_file(args.out)
    if args.n_envs <= 0:
        raise ValueError(f"--n-envs must be positive, got {args.n_envs}.")
    if args.warmup_steps < 0:
        raise ValueError(f"--warmup-steps must be >= 0, got {args.warmup_steps}.")
    bc = config_from_args(args, BCConfig, BC_FLAGS, soft_targets=args.soft_targets)
    kl = config_from_args(args, KLConfig, KL_FLAGS)
    start = time.perf_counter()
    model = llm_init_ppo(
        args.env,
        args.demos,
        init=args.init,
        # only the flags' fields, so that BC's batches keep following --seed
        bc_kwargs={
            **{name: getattr(bc, name) for name in BC_FLAGS},
            "soft_targets": bc.soft_targets,
            "progress_bar": not args.no_progress,
        },
        critic_warmup_steps=args.warmup_steps,
        seed=args.seed,
        allow_env_mismatch=args.allow_env_mismatch,
        n_envs=args.n_envs,
        max_episode_steps=args.max_episode_steps,
        # KLPPO only when the KL term or a critic learning rate of its own is asked for
        **({} if kl.is_default() else dataclasses.asdict(kl)),
    )
    saved = save_model(model, out)
    print(
        f"env: {args.env}  init: {args.init}  critic warm-up: {model.num_timesteps} steps\n"
        f"time: {time.perf_counter() - start:.1f} s\n"
        f"model written to {saved}; continue with\n"
        f"  sb3-llmae train --env {args.env} --load {saved} --steps 100000 "
        f"--out {Path(saved).with_suffix('')}_run"
    )
    return 0 if saved == out else 1


def add_pretrain_parser(subparsers: argparse._SubParsersAction) -> None:
    """:param subparsers: the ``sb3-llmae`` subcommands, to which ``pretrain`` is added"""
    parser = subparsers.add_parser(
        "pretrain",
        help="behaviour-clone demonstrations into a PPO model and warm its critic up",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--demos", required=True, help="demonstrations directory (from `sb3-llmae generate`)")
    parser.add_argument(
        "--out", required=True, help="model zip to write (`train --load` and load_ppo read it)"
    )
    parser.add_argument(
        "--init", choices=("actor", "full"), default="actor", help="keep the actor only, or everything"
    )
    add_config_flags(parser, BCConfig, BC_FLAGS, BC_HELP)
    parser.add_argument(
        "--soft-targets",
        action="store_true",
        help="fit the teacher's action distributions (from generate --decision logprobs), not its actions",
    )
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=CRITIC_WARMUP_STEPS,
        help="env steps of critic warm-up (0: none)",
    )
    add_config_flags(parser, KLConfig, KL_FLAGS)
    parser.add_argument("--n-envs", type=int, default=REFERENCE_N_ENVS, help="number of training envs")
    parser.add_argument(
        "--max-episode-steps", type=int, default=None, help="episode step limit (None: the env's own)"
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the model, its envs and BC's batches")
    parser.add_argument(
        "--allow-env-mismatch",
        action="store_true",
        help="train on demonstrations of another env than --env (refused by default)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide BC's progress bar")
    parser.set_defaults(func=cmd_pretrain)
