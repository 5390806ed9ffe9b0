"""
Quality and speed of the BabyAI expert (minigrid's BabyAIBot): success rate, episode length and
episodes per second over many seeds of BabyAI levels, alone and with a noisy hand (``--noise``).

    python benchmarks/babyai_expert.py
    python benchmarks/babyai_expert.py --n-seeds 20 --noise 0.5 --env BabyAI-BossLevel-v0
"""

from __future__ import annotations

import argparse
import time

from sb3_llmae.demonstrations import generate_demonstrations
from sb3_llmae.experts import NoisyExpert
from sb3_llmae.experts.babyai import BabyAIExpert
from sb3_llmae.experts.base import Expert

DEFAULT_ENV_IDS = (
    "BabyAI-GoToLocal-v0",
    "BabyAI-PickupLoc-v0",
    "BabyAI-Open-v0",
    "BabyAI-UnlockPickup-v0",
    "BabyAI-PutNextLocal-v0",
    "BabyAI-Synth-v0",
)
HEADER = f"{'env':30} {'noise':>5} {'episodes':>8} {'success':>8} {'length':>7} {'episodes/s':>10}"


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-seeds", type=int, default=100, help="seeds 0 .. n-1 of each level")
    parser.add_argument(
        "--env", action="append", default=[], metavar="ENV_ID", help="a level to add (repeatable)"
    )
    parser.add_argument("--noise", type=float, default=0.0, help="random-action rate (NoisyExpert)")
    args = parser.parse_args()

    print(HEADER)
    for env_id in dict.fromkeys([*DEFAULT_ENV_IDS, *args.env]):
        expert: Expert = BabyAIExpert()
        if args.noise:
            expert = NoisyExpert(expert, args.noise, seed=0)
        start = time.perf_counter()
        demos = generate_demonstrations(
            env_id, expert, n_episodes=args.n_seeds, seed=0, only_successful=False, progress_bar=False
        )
        seconds = time.perf_counter() - start
        stats = demos.stats
        print(
            f"{env_id:30} {args.noise:5.2f} {stats['episodes']:8d} {stats['success_rate']:8.1%} "
            f"{stats['mean_length']:7.1f} {stats['episodes'] / seconds:10.1f}",
            flush=True,
        )


if __name__ == "__main__":
    main()
