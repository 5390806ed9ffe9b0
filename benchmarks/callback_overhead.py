"""
What the plugin's callbacks cost PPO's training speed: env steps per second of plain SB3 PPO against
the same PPO (same hyperparameters, seed and envs) with ``VisitationHeatmapCallback`` and
``SampleEfficiencyCallback``. The evaluations themselves (episodes played by the policy) are timed
apart and left out of the ratio: what remains is the callbacks' bookkeeping (per-step counting,
heatmap drawing and saving, evaluation scheduling and files). Rounds alternate between the two set-ups;
the best round of each is kept (the first rounds pay the warm-up).

    python benchmarks/callback_overhead.py [--env MiniGrid-DoorKey-8x8-v0] [--steps 20480] [--rounds 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence

import torch as th
from stable_baselines3.common.callbacks import BaseCallback, CallbackList

from sb3_llmae import SampleEfficiencyCallback, VisitationHeatmapCallback, make_ppo
from sb3_llmae.training import REFERENCE_N_ENVS


def timed_learn(
    env_id: str, steps: int, seed: int, callbacks: bool, every: int, episodes: int
) -> tuple[float, float]:
    """
    :param env_id: the env id
    :param steps: env steps to train
    :param seed: seed of the model and envs
    :param callbacks: whether to train with the plugin's callbacks
    :param every: env steps between evaluations and between heatmap saves
    :param episodes: episodes per evaluation (greedy and sampled each)
    :return: seconds of ``learn()``, and the seconds of it spent playing evaluation episodes
    """
    model = make_ppo(env_id, n_envs=REFERENCE_N_ENVS, seed=seed)
    with tempfile.TemporaryDirectory() as log_dir:
        callback: BaseCallback | None = None
        evaluation = None
        if callbacks:
            evaluation = SampleEfficiencyCallback(eval_freq=every, n_eval_episodes=episodes, log_dir=log_dir)
            callback = CallbackList([VisitationHeatmapCallback(save_freq=every, log_dir=log_dir), evaluation])
        start = time.perf_counter()
        model.learn(steps, callback=callback)
        seconds = time.perf_counter() - start
    model.env.close()  # type: ignore[union-attr]
    return seconds, 0.0 if evaluation is None else evaluation.eval_seconds


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--steps", type=int, default=20_480)
    parser.add_argument("--every", type=int, default=5_000, help="env steps between evaluations / saves")
    parser.add_argument("--episodes", type=int, default=20, help="episodes per evaluation")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    th.set_num_threads(1)

    plain_rates, callback_rates, eval_seconds = [], [], []
    for round_index in range(args.rounds):
        plain, _ = timed_learn(args.env, args.steps, args.seed, False, args.every, args.episodes)
        total, evaluation = timed_learn(args.env, args.steps, args.seed, True, args.every, args.episodes)
        plain_rates.append(args.steps / plain)
        callback_rates.append(args.steps / (total - evaluation))
        eval_seconds.append(evaluation)
        print(
            f"round {round_index + 1}: plain {plain_rates[-1]:.0f} steps/s; with callbacks "
            f"{callback_rates[-1]:.0f} steps/s excluding {evaluation:.1f} s of evaluation "
            f"({args.steps / total:.0f} steps/s including it)",
            flush=True,
        )
    best_plain, best_callbacks = max(plain_rates), max(callback_rates)
    print(
        f"\n{args.env}, PPO (REFERENCE_PPO_KWARGS, {REFERENCE_N_ENVS} envs), {args.steps} steps, "
        f"evaluation and heatmap every {args.every} steps ({args.episodes} greedy + {args.episodes} sampled "
        f"episodes), best of {args.rounds} rounds\n"
        f"plain PPO:            {best_plain:.0f} env steps/s\n"
        f"with both callbacks:  {best_callbacks:.0f} env steps/s (evaluation time excluded)\n"
        f"ratio:                {best_callbacks / best_plain:.3f}\n"
        f"evaluation time:      {min(eval_seconds):.1f} s per run ({args.steps // args.every} evaluations)"
    )


if __name__ == "__main__":
    main()
