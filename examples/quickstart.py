"""
The main job, small and on CPU: an expert plays MiniGrid, its successful episodes become
imitation demonstrations, saved where the last line says.

    python examples/quickstart.py --out demo_output
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

from sb3_llmae import PlannerExpert, generate_demonstrations, load_demonstrations, make_env


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-5x5-v0")
    parser.add_argument("--episodes", type=int, default=20)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--out", default="demo_output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    out = Path(args.out)

    start = time.perf_counter()
    demos = generate_demonstrations(
        args.env, PlannerExpert(), args.episodes, seed=args.seed, out_dir=out / "demonstrations"
    )
    stats = demos.stats
    print(
        f"[1/1] demonstrations: {stats['successes']}/{stats['episodes']} successful episodes, "
        f"{stats['transitions']} transitions, {time.perf_counter() - start:.1f} s"
    )
    reloaded = load_demonstrations(out / "demonstrations", make_env(args.env).observation_space)
    assert len(reloaded) == len(demos)
    print(f"Output: {out.resolve()}")


if __name__ == "__main__":
    main()
