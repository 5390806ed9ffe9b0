"""The ``pretrain`` and ``train`` subcommands of ``sb3-llmae``: a BC-initialised PPO model, and PPO
training from it (or from scratch) with TensorBoard logs."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from stable_baselines3 import PPO
from stable_baselines3.common.save_util import load_from_zip_file

from sb3_llmae.envs import ObsMode, make_vec_env
from sb3_llmae.evaluation import evaluate_success
from sb3_llmae.init import INIT_MODES, REFERENCE_PPO_KWARGS, default_policy_kwargs, llm_init_ppo


def optional_float(text: str) -> float | None:
    """
    :param text: a number, or ``none``
    :return: the number, or ``None``
    """
    return None if text.lower() == "none" else float(text)


def saved_obs_mode(model_path: str) -> ObsMode:
    """
    :param model_path: a model zip written by SB3's ``save()``
    :return: the observation mode its policy was trained in (grid: ``"image"``, vector: ``"flat"``)
    """
    data, _, _ = load_from_zip_file(model_path, device="cpu")
    if data is None or "observation_space" not in data:
        raise ValueError(f"{model_path} holds no observation space: is it a model saved by SB3?")
    return "image" if len(data["observation_space"].shape) == 3 else "flat"


def cmd_pretrain(args: argparse.Namespace) -> int:
    """BC-pretrain a PPO model on demonstrations, warm its critic up, and save it."""
    start = time.perf_counter()
    model = llm_init_ppo(
        args.env,
        args.demos,
        init=args.init,
        stop_at_success=args.stop_at_success,
        bc_epochs=args.bc_epochs,
        bc_batch_size=args.bc_batch_size,
        bc_learning_rate=args.bc_learning_rate,
        critic_warmup_steps=args.warmup_steps,
        n_envs=args.n_envs,
        max_episode_steps=args.max_episode_steps,
        seed=args.seed,
        **REFERENCE_PPO_KWARGS,
    )
    model.save(args.out)
    print(
        f"env: {args.env}  init: {args.init}  critic warm-up: {model.num_timesteps} steps\n"
        f"time: {time.perf_counter() - start:.1f} s\n"
        f"model written to {args.out}; continue with "
        f"`sb3-llmae train --env {args.env} --init {args.out} ...` "
        f"or `python -m rl_zoo3.train --algo ppo --env {args.env} -i {args.out} ...`"
    )
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train PPO, from a saved model or from scratch, log to TensorBoard and save the final model."""
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)
    obs_mode = saved_obs_mode(args.init) if args.init else "image"
    env = make_vec_env(
        args.env,
        n_envs=args.n_envs,
        obs_mode=obs_mode,
        seed=args.seed,
        max_episode_steps=args.max_episode_steps,
    )
    if args.init:
        model = PPO.load(args.init, env=env, seed=args.seed, tensorboard_log=str(out_dir))
    else:
        model = PPO(
            "MlpPolicy",
            env,
            policy_kwargs=default_policy_kwargs(env.observation_space, share_features_extractor=False),
            tensorboard_log=str(out_dir),
            seed=args.seed,
            **REFERENCE_PPO_KWARGS,
        )
    start = time.perf_counter()
    # Not resetting the count keeps the steps a pretrained model already took (critic warm-up) counted.
    model.learn(args.steps, reset_num_timesteps=False, progress_bar=not args.no_progress)
    model_path = out_dir / "model.zip"
    model.save(model_path)
    summary = f"env: {args.env}  trained {args.steps} steps, {model.num_timesteps} in all"
    if args.eval_episodes > 0:
        seeds = range(args.eval_seed, args.eval_seed + args.eval_episodes)
        result = evaluate_success(
            model, args.env, seeds, obs_mode=obs_mode, max_episode_steps=args.max_episode_steps
        )
        summary += f"\ngreedy success: {result.success_rate:.0%} on {args.eval_episodes} episodes"
    print(
        f"{summary}\ntime: {time.perf_counter() - start:.1f} s\n"
        f"model written to {model_path}; TensorBoard logs in {out_dir}"
    )
    return 0


def add_pretrain_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "pretrain", help="behaviour-clone demonstrations into a PPO model and warm its critic up"
    )
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--demos", required=True, help="demonstrations directory (from `sb3-llmae generate`)")
    parser.add_argument("--out", required=True, help="model zip to write (PPO.load and rl_zoo3 -i read it)")
    parser.add_argument(
        "--stop-at-success",
        type=optional_float,
        default=0.15,
        help="stop BC once the greedy success rate reaches this ('none': run every epoch)",
    )
    parser.add_argument(
        "--init", choices=INIT_MODES, default="actor", help="keep the actor only, or everything"
    )
    parser.add_argument("--bc-epochs", type=int, default=100, help="largest number of BC epochs")
    parser.add_argument("--bc-batch-size", type=int, default=32)
    parser.add_argument("--bc-learning-rate", type=float, default=1e-4)
    parser.add_argument(
        "--warmup-steps", type=int, default=2048, help="env steps of critic warm-up (0: none)"
    )
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--max-episode-steps", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.set_defaults(func=cmd_pretrain)


def add_train_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("train", help="train PPO from a pretrained model (--init) or from scratch")
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--init", default=None, help="model zip to continue (e.g. from `sb3-llmae pretrain`)")
    parser.add_argument("--steps", type=int, required=True, help="env steps to train in this run")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", required=True, help="directory for TensorBoard logs and the final model.zip")
    parser.add_argument("--n-envs", type=int, default=4)
    parser.add_argument("--max-episode-steps", type=int, default=None)
    parser.add_argument("--eval-episodes", type=int, default=20, help="greedy episodes at the end (0: none)")
    parser.add_argument(
        "--eval-seed", type=int, default=1_000_000, help="seed of the first evaluation episode"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.set_defaults(func=cmd_train)
