"""``sb3-llmae compare``: methods over seeds on one env, one folder per run, locally or on Ray."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import filelock

from sb3_llmae.demonstrations.storage import check_output_directory
from sb3_llmae.experiments.methods import BUILTIN_METHODS, load_method_specs, resolve_methods
from sb3_llmae.experiments.runner import BACKENDS, compare, plan_runs
from sb3_llmae.experiments.training_run import CompareSettings

# Held while a comparison writes into its folder: a second one on the same folder is refused at once (the OS
# releases the lock of a killed run).
LOCK_FILE = "compare.lock"
SETTING_DEFAULTS = {setting.name: setting.default for setting in dataclasses.fields(CompareSettings)}


def json_object(text: str) -> dict[str, Any]:
    """
    :param text: a JSON object, e.g. ``{"learning_rate": 0.0003}``
    :return: it, as a dict
    :raises argparse.ArgumentTypeError: if it is not one
    """
    try:
        value = json.loads(text)
    except json.JSONDecodeError as error:
        raise argparse.ArgumentTypeError(f"not JSON ({error}): {text!r}") from error
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f'expected a JSON object such as {{"n_steps": 256}}, got {text!r}')
    return value


def locked_output(out: str) -> filelock.BaseFileLock:
    """
    Create the comparison's folder and lock it, before any run starts.

    :param out: the folder
    :return: its lock, held: release it when the comparison ends
    :raises ValueError: if the folder cannot be created, or another comparison holds it
    """
    directory = check_output_directory(out)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise ValueError(
            f"Cannot create the output folder {directory} ({error}): pass another --out."
        ) from None
    lock = filelock.FileLock(directory / LOCK_FILE, timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout:
        raise ValueError(
            f"{directory} is in use by another `sb3-llmae compare` (it holds {directory / LOCK_FILE}): wait "
            "for it to finish, or pass another --out. Re-running into the folder afterwards resumes its runs."
        ) from None
    return lock


def cmd_compare(args: argparse.Namespace) -> int:
    """Train every (method, seed) run not finished before, print a summary; non-zero exit if any failed."""
    extra = load_method_specs(args.methods_file) if args.methods_file else {}
    methods = resolve_methods(args.methods, extra)
    settings = CompareSettings(
        env_id=args.env,
        steps=args.steps,
        demos=args.demos,
        n_envs=args.n_envs,
        max_episode_steps=args.max_episode_steps,
        eval_freq=args.eval_freq,
        n_eval_episodes=args.eval_episodes,
        heatmap_freq=args.heatmap_freq,
        ppo_kwargs=args.ppo_kwargs or {},
    )
    runs = plan_runs(methods, args.seeds, settings, args.out)
    lock = locked_output(args.out)
    try:
        start = time.perf_counter()
        outcomes = compare(
            runs,
            backend=args.backend,
            workers=args.workers,
            ray_address=None if args.ray_address == "local" else args.ray_address,
            progress_bar=not args.no_progress,
        )
    finally:
        lock.release()
    lines = []
    for outcome in outcomes:
        if outcome.status == "failed":
            lines.append(
                f"{outcome.key}: FAILED: {outcome.error} (traceback: {outcome.run_dir / 'error.txt'})"
            )
        else:
            success = outcome.result.get("final_success_greedy")
            lines.append(
                f"{outcome.key}: {outcome.status}, {outcome.result.get('env_steps')} steps, greedy success "
                f"{'n/a' if success is None else f'{success:.2f}'}"
            )
    failed = sum(outcome.status == "failed" for outcome in outcomes)
    lines += [
        f"{len(outcomes) - failed}/{len(outcomes)} runs done in {time.perf_counter() - start:.1f} s; "
        f"runs in {Path(args.out)}",
        f"next: sb3-llmae report {args.out}",
    ]
    print("\n".join(lines))
    return 1 if failed else 0


def add_compare_parser(subparsers: argparse._SubParsersAction) -> None:
    """:param subparsers: the ``sb3-llmae`` subcommands, to which ``compare`` is added"""
    parser = subparsers.add_parser(
        "compare", help="train methods over seeds (one folder per run; re-running resumes)"
    )
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument(
        "--methods",
        nargs="+",
        default=["llmae", "scratch"],
        help=f"built-in: {', '.join(BUILTIN_METHODS)}; or names from --methods-file",
    )
    parser.add_argument(
        "--methods-file", help="YAML mapping method names to specs, e.g. 'llmae-full: {init: full}'"
    )
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--steps", type=int, required=True, help="env steps per run (warm-up included)")
    parser.add_argument(
        "--demos", help="demonstrations directory for the llmae methods (`sb3-llmae generate`)"
    )
    parser.add_argument("--out", required=True, help="output folder (re-running into it skips finished runs)")
    parser.add_argument("--n-envs", type=int, default=SETTING_DEFAULTS["n_envs"])
    parser.add_argument("--max-episode-steps", type=int, default=SETTING_DEFAULTS["max_episode_steps"])
    parser.add_argument(
        "--eval-freq", type=int, default=SETTING_DEFAULTS["eval_freq"], help="env steps between evaluations"
    )
    parser.add_argument(
        "--eval-episodes",
        type=int,
        default=SETTING_DEFAULTS["n_eval_episodes"],
        help="episodes per evaluation (greedy and sampled)",
    )
    parser.add_argument(
        "--heatmap-freq", type=int, default=SETTING_DEFAULTS["heatmap_freq"], help="default: --eval-freq"
    )
    parser.add_argument(
        "--ppo-kwargs",
        type=json_object,
        default=None,
        help='PPO settings of every method, JSON: {"n_steps": 256}',
    )
    parser.add_argument("--backend", choices=BACKENDS, default="local")
    parser.add_argument("--workers", type=int, default=1, help="local backend: runs at once")
    parser.add_argument(
        "--ray-address",
        default="local",
        help="Ray backend: 'local' starts Ray here; 'auto' or ray://HOST:PORT joins a cluster",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress lines")
    parser.set_defaults(func=cmd_compare)
