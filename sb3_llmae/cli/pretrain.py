"""``sb3-llmae pretrain``: a PPO model behaviour-cloned on demonstrations, its critic warmed up, saved."""

from __future__ import annotations

import argparse
import inspect
import time
from pathlib import Path
from typing import Any

from sb3_llmae.cli.checks import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, PROBABILITY, check_ranges
from sb3_llmae.cli.outputs import check_output_file, save_model
from sb3_llmae.training import (
    LLM_INIT_BC_KWARGS,
    LLM_INIT_PPO_KWARGS,
    REFERENCE_N_ENVS,
    llm_init_ppo,
    pretrain_bc,
)

# (flag, pretrain_bc keyword, type, help): the defaults are read from pretrain_bc and LLM_INIT_BC_KWARGS.
BC_OPTIONS: tuple[tuple[str, str, Any, str], ...] = (
    ("--bc-epochs", "epochs", int, "largest number of BC epochs"),
    ("--bc-batch-size", "batch_size", int, "BC batch size"),
    ("--bc-learning-rate", "learning_rate", float, "BC learning rate (Adam)"),
    ("--bc-eval-every", "eval_every", int, "BC epochs between greedy-success evaluations"),
)

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


def optional_int(text: str) -> int | None:
    """
    :param text: a whole number, or ``none``
    :return: the number, or ``None``
    """
    return None if text.lower() == "none" else int(text)


def optional_float(text: str) -> float | None:
    """
    :param text: a number, or ``none``
    :return: the number, or ``None``
    """
    return None if text.lower() == "none" else float(text)


def bc_default(name: str) -> Any:
    """
    :param name: a keyword of :func:`~sb3_llmae.training.bc.pretrain_bc`
    :return: the value ``llm_init_ppo`` uses for it when not told otherwise
    """
    return LLM_INIT_BC_KWARGS.get(name, inspect.signature(pretrain_bc).parameters[name].default)


def llm_init_default(name: str) -> Any:
    """
    :param name: a keyword of :func:`~sb3_llmae.training.llm_init.llm_init_ppo`
    :return: its default
    """
    return inspect.signature(llm_init_ppo).parameters[name].default


def cmd_pretrain(args: argparse.Namespace) -> int:
    """BC-pretrain a PPO model on demonstrations, warm its critic up, and save it."""
    check_ranges(args, RANGES, {flag: keyword for flag, keyword, _, _ in BC_OPTIONS})
    out = check_output_file(args.out)
    if args.n_envs <= 0:
        raise ValueError(f"--n-envs must be positive, got {args.n_envs}.")
    if args.warmup_steps < 0:
        raise ValueError(f"--warmup-steps must be >= 0, got {args.warmup_steps}.")
    start = time.perf_counter()
    bc_kwargs = {keyword: getattr(args, keyword) for _, keyword, _, _ in BC_OPTIONS}
    bc_kwargs["stop_at_success"] = args.stop_at_success
    bc_kwargs["progress_bar"] = not args.no_progress
    model = llm_init_ppo(
        args.env,
        args.demos,
        init=args.init,
        bc_kwargs=bc_kwargs,
        critic_warmup_steps=args.warmup_steps,
        n_envs=args.n_envs,
        max_episode_steps=args.max_episode_steps,
        seed=args.seed,
        allow_env_mismatch=args.allow_env_mismatch,
        kl_coef=args.kl_coef,
        kl_decay_steps=args.kl_decay_steps,
        critic_learning_rate=args.critic_learning_rate,
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
        "pretrain", help="behaviour-clone demonstrations into a PPO model and warm its critic up"
    )
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--demos", required=True, help="demonstrations directory (from `sb3-llmae generate`)")
    parser.add_argument(
        "--out", required=True, help="model zip to write (KLPPO.load and `train --load` read it)"
    )
    parser.add_argument(
        "--init",
        choices=("actor", "full"),
        default=llm_init_default("init"),
        help="keep the actor only, or everything",
    )
    parser.add_argument(
        "--stop-at-success",
        type=optional_float,
        default=bc_default("stop_at_success"),
        help="stop BC once the greedy success rate reaches this ('none': run every epoch)",
    )
    for flag, keyword, kind, text in BC_OPTIONS:
        parser.add_argument(flag, dest=keyword, type=kind, default=bc_default(keyword), help=text)
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=llm_init_default("critic_warmup_steps"),
        help="env steps of critic warm-up (0: none)",
    )
    parser.add_argument(
        "--kl-coef",
        type=float,
        default=LLM_INIT_PPO_KWARGS["kl_coef"],
        help="weight of KL(prior || policy) in PPO's loss once training goes on (0: none)",
    )
    parser.add_argument(
        "--kl-decay-steps",
        type=optional_int,
        default=LLM_INIT_PPO_KWARGS["kl_decay_steps"],
        help="env steps over which the KL weight falls to 0 ('none': constant)",
    )
    parser.add_argument(
        "--critic-learning-rate",
        type=optional_float,
        default=LLM_INIT_PPO_KWARGS["critic_learning_rate"],
        help="the critic's own learning rate ('none': the actor's)",
    )
    parser.add_argument("--n-envs", type=int, default=REFERENCE_N_ENVS)
    parser.add_argument("--max-episode-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--allow-env-mismatch",
        action="store_true",
        help="train on demonstrations of another env than --env (refused by default)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide BC's progress bar")
    parser.set_defaults(func=cmd_pretrain)
