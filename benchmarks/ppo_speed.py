"""
PPO's training speed on MiniGrid with the reference settings, and what it makes of the reference
experiment's wall time.

In one process, one torch thread (as ``compare`` trains each run):

1. a baseline of raw single-process speed: the bare MiniGrid env stepped with random actions, whose
   steps/s say how much of a core this process gets on a shared machine;
2. the plugin's PPO (``make_ppo``: ``REFERENCE_PPO_KWARGS``, 4 envs, ``MinigridFeaturesExtractor``);
3. rl-zoo3's MiniGrid recipe at the same PPO hyperparameters (``FlatObsWrapper``, ``MlpPolicy``,
   ``VecNormalize``), the ratio the plugin's update speed must keep (>= 1.0).

Each ``learn()`` is split into ``collect_rollouts`` and ``train``, in CPU seconds of the process
(``time.process_time``, which other jobs disturb far less than wall time) and wall seconds. On a quiet
machine a single-threaded run gets its core alone, so its wall time there is close to its CPU time
here; the baseline's CPU-s/wall-s says how loaded this machine was. One evaluation of the reference
experiment (40 episodes greedy and sampled, step limit 640) is timed on the trained model for the
estimate of the whole experiment (3 methods x 10 seeds x 500k steps, evaluated every 10k steps).

    python benchmarks/ppo_speed.py [--env MiniGrid-DoorKey-8x8-v0] [--steps 50000] [--workers 2]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import numpy as np
import torch as th
from stable_baselines3 import PPO
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm
from stable_baselines3.common.vec_env import VecNormalize

from sb3_llmae import make_ppo, make_vec_env
from sb3_llmae.training import REFERENCE_N_ENVS
from sb3_llmae.training.config import EvalConfig
from sb3_llmae.training.evaluation import evaluate_success

# The reference experiment (README, "Reproduce the reference table").
REFERENCE_RUNS = 30
REFERENCE_STEPS = 500_000
REFERENCE_EVAL_FREQ = 10_000
REFERENCE_EVAL_EPISODES = 40
REFERENCE_MAX_EPISODE_STEPS = 640
REFERENCE_SOURCE_STEPS = 150_000


@dataclass
class PhaseTimes:
    """CPU and wall seconds spent in each phase of ``learn()``."""

    cpu: dict[str, float] = field(default_factory=lambda: {"collect_rollouts": 0.0, "train": 0.0})
    wall: dict[str, float] = field(default_factory=lambda: {"collect_rollouts": 0.0, "train": 0.0})
    total_cpu: float = 0.0
    total_wall: float = 0.0


def timed(model: OnPolicyAlgorithm, phase: str, times: PhaseTimes) -> None:
    """Wrap ``model.<phase>`` so that its CPU and wall seconds add up in ``times``."""
    original: Callable[..., Any] = getattr(model, phase)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        cpu, wall = time.process_time(), time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            times.cpu[phase] += time.process_time() - cpu
            times.wall[phase] += time.perf_counter() - wall

    setattr(model, phase, wrapper)


def timed_learn(model: OnPolicyAlgorithm, steps: int) -> PhaseTimes:
    """:return: the phase times of ``model.learn(steps)``"""
    times = PhaseTimes()
    timed(model, "collect_rollouts", times)
    timed(model, "train", times)
    cpu, wall = time.process_time(), time.perf_counter()
    model.learn(steps)
    times.total_cpu, times.total_wall = time.process_time() - cpu, time.perf_counter() - wall
    return times


def bare_env_speed(env_id: str, seconds: float, seed: int = 0) -> tuple[float, float]:
    """:return: steps per CPU second and per wall second of the bare env with random actions"""
    env = gym.make(env_id)
    env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    steps = 0
    cpu, wall = time.process_time(), time.perf_counter()
    while time.perf_counter() - wall < seconds:
        for action in rng.integers(0, 3, size=1000):
            _, _, terminated, truncated, _ = env.step(int(action))
            if terminated or truncated:
                env.reset()
        steps += 1000
    return steps / (time.process_time() - cpu), steps / (time.perf_counter() - wall)


def zoo_recipe_ppo(env_id: str, seed: int) -> PPO:
    """:return: rl-zoo3's MiniGrid recipe (flat observations, MlpPolicy, VecNormalize) at the reference
    PPO hyperparameters"""
    from sb3_llmae.training.ppo import REFERENCE_PPO_KWARGS

    env = VecNormalize(make_vec_env(env_id, n_envs=REFERENCE_N_ENVS, seed=seed, obs_mode="flat"))
    return PPO("MlpPolicy", env, seed=seed, **REFERENCE_PPO_KWARGS)


def describe(name: str, times: PhaseTimes, steps: int) -> str:
    """:return: one line: steps per CPU second and per wall second, and each phase's share"""
    return (
        f"{name:<16} {steps / times.total_cpu:6.0f} steps/CPU-s {steps / times.total_wall:6.0f} steps/wall-s "
        f"(collect_rollouts {times.cpu['collect_rollouts']:.1f} CPU-s, train {times.cpu['train']:.1f} CPU-s)"
    )


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--workers", type=int, default=2, help="workers of the estimated reference experiment"
    )
    parser.add_argument("--skip-zoo", action="store_true", help="leave out rl-zoo3's recipe")
    args = parser.parse_args(argv)
    th.set_num_threads(1)
    load_before = os.getloadavg()
    print(f"load average before: {load_before[0]:.1f}, {os.cpu_count()} CPUs", flush=True)

    bare_cpu, bare_wall = bare_env_speed(args.env, seconds=10.0, seed=args.seed)
    print(
        f"baseline: bare {args.env} {bare_cpu:,.0f} steps/CPU-s, {bare_wall:,.0f} steps/wall-s "
        f"(this process got {bare_wall / bare_cpu:.0%} of a core)",
        flush=True,
    )
    plugin = make_ppo(args.env, n_envs=REFERENCE_N_ENVS, seed=args.seed)
    plugin_times = timed_learn(plugin, args.steps)
    print(describe("plugin PPO", plugin_times, args.steps), flush=True)
    if not args.skip_zoo:
        zoo_times = timed_learn(zoo_recipe_ppo(args.env, args.seed), args.steps)
        print(describe("rl-zoo3 recipe", zoo_times, args.steps), flush=True)
        ratio = zoo_times.total_cpu / plugin_times.total_cpu
        print(
            f"plugin / rl-zoo3 recipe, steps per CPU second: {ratio:.2f}x "
            f"(train {zoo_times.cpu['train'] / plugin_times.cpu['train']:.2f}x, collect_rollouts "
            f"{zoo_times.cpu['collect_rollouts'] / plugin_times.cpu['collect_rollouts']:.2f}x)",
            flush=True,
        )

    # one evaluation of the reference experiment on the model trained above
    cpu, wall = time.process_time(), time.perf_counter()
    for deterministic in (True, False):
        evaluate_success(
            plugin,
            args.env,
            seeds=range(EvalConfig().seed, EvalConfig().seed + REFERENCE_EVAL_EPISODES),
            deterministic=deterministic,
            max_episode_steps=REFERENCE_MAX_EPISODE_STEPS,
        )
    eval_cpu, eval_wall = time.process_time() - cpu, time.perf_counter() - wall
    rate = args.steps / plugin_times.total_cpu
    evaluations = REFERENCE_STEPS // REFERENCE_EVAL_FREQ + 1
    run_hours = (REFERENCE_STEPS / rate + evaluations * eval_cpu) / 3600
    total_hours = (REFERENCE_RUNS * run_hours + REFERENCE_SOURCE_STEPS / rate / 3600) / args.workers
    load_after = os.getloadavg()
    print(
        f"one reference evaluation (2 x {REFERENCE_EVAL_EPISODES} episodes, "
        f"limit {REFERENCE_MAX_EPISODE_STEPS}): "
        f"{eval_cpu:.1f} CPU-s ({eval_wall:.1f} wall-s)\n"
        f"reference experiment on a quiet machine (CPU time as wall time, one core per worker): "
        f"{run_hours:.1f} h per 500k-step run ({evaluations} evaluations), "
        f"{total_hours:.1f} h for {REFERENCE_RUNS} runs + one 150k-step source on {args.workers} workers\n"
        f"load average after: {load_after[0]:.1f}"
    )


if __name__ == "__main__":
    main()
