"""
What the plugin's callbacks cost PPO's training speed: env steps per second of plain SB3 PPO against
the same PPO (same hyperparameters, seed and envs) with ``VisitationHeatmapCallback`` and
``SampleEfficiencyCallback``. The evaluations themselves (episodes played by the policy) are timed
apart and left out of the ratio: what remains is the callbacks' bookkeeping (per-step counting,
heatmap drawing and saving, evaluation scheduling and files).

Speeds are measured in CPU time of the process (``time.process_time``), which other jobs on a shared
machine disturb far less than wall-clock time (also printed). Rounds alternate between the two
set-ups; the best round of each is kept (the first rounds pay the warm-up).

    python benchmarks/callback_overhead.py [--env MiniGrid-DoorKey-8x8-v0] [--steps 10240] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass

import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from sb3_llmae import SampleEfficiencyCallback, VisitationHeatmapCallback, make_ppo
from sb3_llmae.training import REFERENCE_N_ENVS


@dataclass(frozen=True)
class Timing:
    """One ``learn()``: CPU and wall seconds, and the part of each spent playing evaluation episodes."""

    cpu: float
    wall: float
    eval_cpu: float = 0.0
    eval_wall: float = 0.0

    def rate(self, steps: int) -> float:
        """:return: env steps per CPU second, evaluation left out"""
        return steps / (self.cpu - self.eval_cpu)

    def wall_rate(self, steps: int) -> float:
        """:return: env steps per wall-clock second, evaluation left out"""
        return steps / (self.wall - self.eval_wall)


def timed_learn(env_id: str, steps: int, seed: int, callbacks: bool, every: int, episodes: int) -> Timing:
    """
    :param env_id: the env id
    :param steps: env steps to train
    :param seed: seed of the model and envs
    :param callbacks: whether to train with the plugin's callbacks
    :param every: env steps between evaluations and between heatmap saves
    :param episodes: episodes per evaluation (greedy and sampled each)
    :return: the timing of ``learn()``
    """
    model = make_ppo(env_id, n_envs=REFERENCE_N_ENVS, seed=seed)
    with tempfile.TemporaryDirectory() as log_dir:
        callback: BaseCallback | None = None
        evaluation = None
        if callbacks:
            evaluation = SampleEfficiencyCallback(eval_freq=every, n_eval_episodes=episodes, log_dir=log_dir)
            callback = CallbackList([VisitationHeatmapCallback(save_freq=every, log_dir=log_dir), evaluation])
        wall, cpu = time.perf_counter(), time.process_time()
        model.learn(steps, callback=callback)
        timing = Timing(cpu=time.process_time() - cpu, wall=time.perf_counter() - wall)
    model.env.close()  # type: ignore[union-attr]
    if evaluation is None:
        return timing
    return Timing(timing.cpu, timing.wall, evaluation.eval_cpu_seconds, evaluation.eval_seconds)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--steps", type=int, default=10_240)
    parser.add_argument("--every", type=int, default=2_500, help="env steps between evaluations / saves")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per evaluation")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    th.set_num_threads(1)

    plain_runs, callback_runs = [], []
    for round_index in range(args.rounds):
        plain_runs.append(timed_learn(args.env, args.steps, args.seed, False, args.every, args.episodes))
        callback_runs.append(timed_learn(args.env, args.steps, args.seed, True, args.every, args.episodes))
        plain, with_callbacks = plain_runs[-1], callback_runs[-1]
        steps = args.steps
        print(
            f"round {round_index + 1}: plain {plain.rate(steps):.0f} steps/CPU-s "
            f"({plain.wall_rate(steps):.0f}/wall-s); with callbacks {with_callbacks.rate(steps):.0f} "
            f"steps/CPU-s ({with_callbacks.wall_rate(steps):.0f}/wall-s) excluding "
            f"{with_callbacks.eval_cpu:.1f} CPU-s ({with_callbacks.eval_wall:.1f} wall-s) of evaluation",
            flush=True,
        )
    best_plain = max(run.rate(args.steps) for run in plain_runs)
    best_callbacks = max(run.rate(args.steps) for run in callback_runs)
    best_plain_wall = max(run.wall_rate(args.steps) for run in plain_runs)
    best_callbacks_wall = max(run.wall_rate(args.steps) for run in callback_runs)
    print(
        f"\n{args.env}, PPO (REFERENCE_PPO_KWARGS, {REFERENCE_N_ENVS} envs), {args.steps} steps, "
        f"evaluation and heatmap every {args.every} steps ({args.episodes} greedy + {args.episodes} sampled "
        f"episodes), best of {args.rounds} rounds\n"
        f"plain PPO:            {best_plain:.0f} env steps per CPU second "
        f"({best_plain_wall:.0f} per wall second)\n"
        f"with both callbacks:  {best_callbacks:.0f} env steps per CPU second "
        f"({best_callbacks_wall:.0f} per wall second), evaluation time excluded\n"
        f"ratio:                {best_callbacks / best_plain:.3f} (CPU time), "
        f"{best_callbacks_wall / best_plain_wall:.3f} (wall clock)\n"
        f"evaluation:           {min(run.eval_cpu for run in callback_runs):.1f} CPU-s per run "
        f"({args.steps // args.every} evaluations)"
    )


if __name__ == "__main__":
    main()
