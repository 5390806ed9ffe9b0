"""
Wall time of ``sb3-llmae --help`` (and of an argument error), absolute and as a ratio to
``python -c pass`` measured in the same run, median of ``--rounds`` fresh processes each.

    python benchmarks/cli_startup.py [--rounds 5]

The target (issue 20): ``--help`` and argument errors answer in under 2 s.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

COMMANDS: dict[str, list[str]] = {
    "python -c pass": [sys.executable, "-c", "pass"],
    "sb3-llmae --help": [sys.executable, "-m", "sb3_llmae.cli", "--help"],
    "sb3-llmae compare --help": [sys.executable, "-m", "sb3_llmae.cli", "compare", "--help"],
    "sb3-llmae train (argument error)": [sys.executable, "-m", "sb3_llmae.cli", "train", "--steps", "x"],
}


def wall_time(command: list[str]) -> float:
    """
    :param command: the process to start
    :return: seconds from its start to its exit
    """
    start = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=5, help="processes per command (the median is kept)")
    args = parser.parse_args()
    medians: dict[str, float] = {}
    for name, command in COMMANDS.items():
        wall_time(command)  # warm the file cache, not counted
        medians[name] = statistics.median(wall_time(command) for _ in range(args.rounds))
    baseline = medians["python -c pass"]
    print(f"median of {args.rounds} runs each")
    for name, seconds in medians.items():
        print(f"{name:<36} {seconds:6.2f} s  {seconds / baseline:6.1f}x python -c pass")
    print(
        f"target: sb3-llmae --help under 2 s -> {'met' if medians['sb3-llmae --help'] < 2.0 else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
