"""
Env steps/s of sb3-llmae's wrapped envs against the bare MiniGrid env, and planner
demonstrations/s, measured in one process so that the ratios are fair.

    python benchmarks/env_speed.py [--env MiniGrid-DoorKey-8x8-v0] [--steps 20000] [--episodes 200]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import gymnasium as gym
import numpy as np

from sb3_llmae import generate_demonstrations, make_vec_env
from sb3_llmae.envs import make_env
from sb3_llmae.experts.planner import PlannerExpert


def steps_per_second(make: Callable[[], gym.Env], n_steps: int, seed: int = 0) -> float:
    """
    :param make: builds the env
    :param n_steps: steps to time (random actions, resets included)
    :param seed: seed of the first reset and of the actions
    :return: env steps per second
    """
    env = make()
    actions = np.random.default_rng(seed).integers(0, 3, size=n_steps)  # turns and forward: long episodes
    env.reset(seed=seed)
    start = time.perf_counter()
    for action in actions:
        _, _, terminated, truncated, _ = env.step(int(action))
        if terminated or truncated:
            env.reset()
    return n_steps / (time.perf_counter() - start)


def vec_steps_per_second(env_id: str, n_steps: int, n_envs: int = 8, seed: int = 0) -> float:
    """
    :return: env steps per second of ``make_vec_env`` (DummyVecEnv with Monitor), as PPO steps it
    """
    vec_env = make_vec_env(env_id, n_envs=n_envs, seed=seed)
    vec_env.reset()
    actions = np.random.default_rng(seed).integers(0, 3, size=(n_steps // n_envs, n_envs))
    start = time.perf_counter()
    for batch in actions:
        vec_env.step(batch)
    return actions.size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--episodes", type=int, default=200, help="planner episodes for demonstrations/s")
    parser.add_argument("--rounds", type=int, default=3, help="measurements per env kind (best is kept)")
    args = parser.parse_args()

    candidates: dict[str, Callable[[], float]] = {
        "bare MiniGrid env (gym.make)": lambda: steps_per_second(lambda: gym.make(args.env), args.steps),
        "make_env(obs_mode='image')": lambda: steps_per_second(lambda: make_env(args.env), args.steps),
        "make_env(obs_mode='flat')": lambda: steps_per_second(
            lambda: make_env(args.env, obs_mode="flat"), args.steps
        ),
        "make_vec_env(n_envs=8), per env step": lambda: vec_steps_per_second(args.env, args.steps),
    }
    # Rounds interleave the candidates so that warm-up and machine load weigh on all alike; best of each.
    best = dict.fromkeys(candidates, 0.0)
    for _ in range(args.rounds):
        for name, measure in candidates.items():
            best[name] = max(best[name], measure())
    bare = best["bare MiniGrid env (gym.make)"]
    rows = list(best.items())
    print(f"{args.env}, {args.steps} random steps")
    for name, speed in rows:
        print(f"  {name:<40} {speed:>9,.0f} steps/s   ratio to bare {speed / bare:.2f}")

    start = time.perf_counter()
    demos = generate_demonstrations(args.env, PlannerExpert(), args.episodes, seed=0, progress_bar=False)
    elapsed = time.perf_counter() - start
    stats = demos.stats
    print(
        f"planner demonstrations: {args.episodes} episodes in {elapsed:.2f} s = "
        f"{args.episodes / elapsed:,.0f} episodes/s, {stats['transitions'] / elapsed:,.0f} transitions/s, "
        f"success {stats['success_rate']:.0%}"
    )


if __name__ == "__main__":
    main()
