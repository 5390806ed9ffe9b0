"""``sb3-llmae train``: PPO from a saved model (``--load``) or from scratch, with TensorBoard logs."""

from __future__ import annotations

import argparse
import time
from typing import TYPE_CHECKING

from sb3_llmae.cli.config_flags import DefaultsHelpFormatter, add_config_flags
from sb3_llmae.cli.outputs import save_model
from sb3_llmae.registration import DEFAULT_OBS_MODE, OBS_MODES
from sb3_llmae.training.config import REFERENCE_N_ENVS, EvalConfig

if TYPE_CHECKING:
    from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

EVAL_FLAGS = {"n_episodes": "--eval-episodes", "seed": "--eval-seed"}
EVAL_HELP = {
    "n_episodes": "greedy episodes at the end (0: none)",
    "seed": "seed of the first evaluation episode",
}

MODEL_FILE = "model.zip"


def cmd_train(args: argparse.Namespace) -> int:
    """Train PPO, from a saved model or from scratch, log to TensorBoard and save the final model."""
    from sb3_llmae.demonstrations.storage import check_output_directory
    from sb3_llmae.training.evaluation import evaluate_success
    from sb3_llmae.training.ppo import load_ppo, make_ppo

    if args.steps <= 0:
        raise ValueError(f"--steps must be positive, got {args.steps}.")
    if args.n_envs <= 0:
        raise ValueError(f"--n-envs must be positive, got {args.n_envs}.")
    if args.eval_episodes < 0:
        raise ValueError(f"--eval-episodes must be >= 0, got {args.eval_episodes}.")
    out_dir = check_output_directory(args.out)
    if (out_dir / MODEL_FILE).exists() and not args.overwrite:
        raise ValueError(
            f"{out_dir} holds a trained model ({out_dir / MODEL_FILE}): pass another --out, or --overwrite "
            "to replace it (to go on training it: --load it and give a new --out)."
        )
    env_settings = {"n_envs": args.n_envs, "max_episode_steps": args.max_episode_steps, "seed": args.seed}
    model: OnPolicyAlgorithm
    if args.load:
        model = load_ppo(args.load, env=args.env, tensorboard_log=str(out_dir), **env_settings)
    else:
        model = make_ppo(args.env, obs_mode=args.obs_mode, tensorboard_log=str(out_dir), **env_settings)
    out_dir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    # Not resetting the count keeps the steps a pretrained model already took (critic warm-up) counted.
    try:
        model.learn(args.steps, reset_num_timesteps=False, progress_bar=not args.no_progress)
    except KeyboardInterrupt:
        # as `generate` keeps its finished episodes, an interrupted training keeps what it trained so far
        saved = save_model(model, out_dir / MODEL_FILE)
        print(f"interrupted after {model.num_timesteps} steps: the model trained so far is in {saved}")
        raise
    model_path = save_model(model, out_dir / MODEL_FILE)
    summary = f"env: {args.env}  trained {args.steps} steps, {model.num_timesteps} in all"
    if args.eval_episodes > 0:
        evaluation = EvalConfig(
            seed=args.eval_seed, n_episodes=args.eval_episodes, max_episode_steps=args.max_episode_steps
        )
        result = evaluate_success(
            model, args.env, evaluation.seeds, max_episode_steps=evaluation.max_episode_steps
        )
        summary += f"\ngreedy success: {result.success_rate:.0%} on {args.eval_episodes} episodes"
    print(
        f"{summary}\ntime: {time.perf_counter() - start:.1f} s\n"
        f"model written to {model_path}; TensorBoard logs in {out_dir}"
    )
    return 0 if model_path == out_dir / MODEL_FILE else 1


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    """:param subparsers: the ``sb3-llmae`` subcommands, to which ``train`` is added"""
    parser = subparsers.add_parser(
        "train",
        help="train PPO from a saved model (--load) or from scratch",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--load", default=None, help="model zip to continue (e.g. from `sb3-llmae pretrain`)")
    parser.add_argument("--steps", type=int, required=True, help="env steps to train in this run")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model and its envs")
    parser.add_argument("--out", required=True, help="directory for TensorBoard logs and the final model.zip")
    parser.add_argument(
        "--obs-mode",
        choices=OBS_MODES,
        default=DEFAULT_OBS_MODE,
        help="from scratch only (a loaded model has its own)",
    )
    parser.add_argument("--n-envs", type=int, default=REFERENCE_N_ENVS, help="number of training envs")
    parser.add_argument(
        "--max-episode-steps", type=int, default=None, help="episode step limit (None: the env's own)"
    )
    add_config_flags(parser, EvalConfig, EVAL_FLAGS, EVAL_HELP)
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace the model.zip of a run already in --out"
    )
    parser.set_defaults(func=cmd_train)
