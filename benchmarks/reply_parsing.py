"""
Time to read an action out of long free-text LLM replies, by reply size: the time per KB stays flat
(parsing is linear in the reply), and the client keeps at most ``MAX_REPLY_CHARS`` of any reply.

    python benchmarks/reply_parsing.py [--sizes 44000 220000 1000000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

from sb3_llmae.experts.llm.parsing import parse_action, parse_action_list
from sb3_llmae.experts.llm.replies import MAX_REPLY_CHARS, bound_text

# Reasoning text full of action names, negations and clause boundaries: the costly case for the parser.
FILLER = "The door is not open, so I can't go forward; I turn left, then go forward. "


def best_time(parse: Callable[[], object], repeats: int) -> float:
    """
    :param parse: the parse to time
    :param repeats: how many times to run it
    :return: the fastest run, in seconds
    """
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        parse()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[44_000, 220_000, 1_000_000])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    print(
        f"{'reply chars':>12} {'parse_action s':>15} {'us per KB':>10} {'plan list s':>12} "
        f"{'bounded chars':>14}"
    )
    for size in args.sizes:
        reply = (FILLER * (size // len(FILLER) + 1))[:size]
        step_s = best_time(lambda: parse_action(reply), args.repeats)  # noqa: B023
        plan_s = best_time(lambda: parse_action_list(reply + "\nActions: [forward]"), args.repeats)  # noqa: B023
        print(f"{size:>12,} {step_s:>15.3f} {1e6 * step_s / (size / 1000):>10.1f} {plan_s:>12.3f} "
              f"{len(bound_text(reply)):>14,}")  # fmt: skip
    print(f"(the client parses, caches and records at most {MAX_REPLY_CHARS:,} characters of a reply)")


if __name__ == "__main__":
    main()
