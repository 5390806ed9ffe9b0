"""``sb3-llmae compare``: methods over seeds on one env, one folder per run, locally or on Ray."""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from pathlib import Path
from typing import Any

import filelock

from sb3_llmae.cli.config_flags import DefaultsHelpFormatter
from sb3_llmae.experiments.methods import BUILTIN_METHODS, load_method_specs, resolve_methods
from sb3_llmae.experiments.specs import BACKENDS, CompareSettings
from sb3_llmae.run_layout import ERROR_FILE
from sb3_llmae.training.config import CRITIC_WARMUP_STEPS, EvalConfig

# Held while a comparison writes into its folder: a second one on the same folder is refused at once (the OS
# releases the lock of a killed run).
LOCK_FILE = "compare.lock"
# The defaults of the flags are those of the settings objects, written once there.
SETTING_DEFAULTS = {
    setting.name: setting.default
    for setting in dataclasses.fields(CompareSettings)
    if setting.default is not dataclasses.MISSING
}
EVAL_DEFAULTS = EvalConfig()
# (flag, default, help) of the integer settings of CompareSettings and its EvalConfig
SETTING_FLAGS: tuple[tuple[str, int | None, str], ...] = (
    ("--n-envs", SETTING_DEFAULTS["n_envs"], "training envs per run"),
    (
        "--max-episode-steps",
        SETTING_DEFAULTS["max_episode_steps"],
        "step limit of training and evaluation episodes (None: the env's own)",
    ),
    ("--eval-freq", EVAL_DEFAULTS.freq, "env steps between evaluations"),
    ("--eval-episodes", EVAL_DEFAULTS.n_episodes, "episodes per evaluation (greedy and sampled)"),
    (
        "--eval-seed",
        EVAL_DEFAULTS.seed,
        "first evaluation seed (keep it apart from the demonstrations' seeds)",
    ),
    (
        "--heatmap-freq",
        SETTING_DEFAULTS["heatmap_freq"],
        "env steps between visitation heatmaps (None: --eval-freq)",
    ),
)


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
    from sb3_llmae.demonstrations.storage import check_output_directory

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
    from sb3_llmae.experiments.budget import training_budget
    from sb3_llmae.experiments.ray_backend import require_ray
    from sb3_llmae.experiments.runner import compare, plan_runs

    if args.backend == "ray":
        require_ray()  # before anything else: one line naming the extra
    extra = load_method_specs(args.methods_file) if args.methods_file else {}
    methods = resolve_methods(args.methods, extra)
    settings = CompareSettings(
        env_id=args.env,
        steps=args.steps,
        demos=args.demos,
        n_envs=args.n_envs,
        max_episode_steps=args.max_episode_steps,
        evaluation=EvalConfig(seed=args.eval_seed, n_episodes=args.eval_episodes, freq=args.eval_freq),
        heatmap_freq=args.heatmap_freq,
        ppo_kwargs=args.ppo_kwargs or {},
    )
    runs = plan_runs(methods, args.seeds, settings, args.out)
    # before any work: how much there is (a transfer source model is trained once for all its runs)
    print(training_budget(runs).describe(), flush=True)
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
                f"{outcome.key}: FAILED: {outcome.error} (traceback: {outcome.run_dir / ERROR_FILE})"
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
        "compare",
        help="train methods over seeds (one folder per run; re-running resumes)",
        formatter_class=DefaultsHelpFormatter,
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
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2], help="one run per method and seed")
    parser.add_argument(
        "--steps",
        type=int,
        required=True,
        help="env steps per run, everything a model trains on the env counted: an llmae method's critic "
        f"warm-up ({CRITIC_WARMUP_STEPS} steps, actor frozen) is part of it, so give it well above that",
    )
    parser.add_argument(
        "--demos", help="demonstrations directory for the llmae methods (`sb3-llmae generate`)"
    )
    parser.add_argument("--out", required=True, help="output folder (re-running into it skips finished runs)")
    for flag, default, description in SETTING_FLAGS:
        parser.add_argument(flag, type=int, default=default, help=description)
    parser.add_argument(
        "--ppo-kwargs",
        type=json_object,
        default=None,
        help='PPO settings of every method, JSON: {"n_steps": 256}',
    )
    parser.add_argument("--backend", choices=BACKENDS, default="local", help="where the runs train")
    parser.add_argument("--workers", type=int, default=1, help="local backend: runs at once")
    parser.add_argument(
        "--ray-address",
        default="local",
        help="Ray backend: 'local' starts Ray here; 'auto', HOST:PORT (the head's GCS) or ray://HOST:10001 "
        "joins a cluster, whose nodes must share --out (checked before any run)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide the progress lines")
    parser.set_defaults(func=cmd_compare)
