"""
Quality and speed of the planning expert: success rate, episode length and episodes per second
over many seeds, and, where the optimum can be computed (DoorKey, Unlock, Empty, FourRooms, ...),
the ratio of each episode's length to the shortest possible.

    python benchmarks/planner_quality.py
    python benchmarks/planner_quality.py --n-seeds 20 --env MiniGrid-KeyCorridorS6R3-v0
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass, field

from sb3_llmae.envs import make_env, unwrap_minigrid
from sb3_llmae.experts.base import UnsupportedEnvError
from sb3_llmae.experts.planner import PlannerExpert, PlanningError
from sb3_llmae.testing.oracle import shortest_solution_length

DEFAULT_ENV_IDS = ("MiniGrid-DoorKey-8x8-v0", "MiniGrid-Unlock-v0")


@dataclass
class EnvReport:
    """What the planner did on one env, over all seeds."""

    env_id: str
    n_episodes: int = 0
    n_successes: int = 0
    lengths: list[int] = field(default_factory=list)
    # length / shortest possible length, for the successful episodes, where the optimum is known
    length_ratios: list[float] = field(default_factory=list)
    play_seconds: float = 0.0
    first_error: str | None = None

    def row(self) -> str:
        success = 100 * self.n_successes / max(self.n_episodes, 1)
        mean_length = f"{statistics.mean(self.lengths):.1f}" if self.lengths else "-"
        speed = self.n_episodes / self.play_seconds if self.play_seconds > 0 else float("nan")
        if self.length_ratios:
            optimal = sum(ratio == 1 for ratio in self.length_ratios)
            ratios = (
                f"{statistics.mean(self.length_ratios):10.3f} {max(self.length_ratios):9.3f} "
                f"{optimal:>4}/{len(self.length_ratios)}"
            )
        else:
            ratios = f"{'-':>10} {'-':>9} {'-':>9}"
        return f"{self.env_id:34} {success:8.1f}% {mean_length:>8} {speed:10.1f} {ratios}"


HEADER = (
    f"{'env':34} {'success':>9} {'length':>8} {'episodes/s':>10} "
    f"{'mean ratio':>10} {'max ratio':>9} {'optimal':>9}"
)


def evaluate(expert: PlannerExpert, env_id: str, seeds: range, step_cap: int) -> EnvReport:
    """
    Play one episode per seed and compare its length to the shortest possible.

    :param expert: the planner
    :param env_id: a MiniGrid env id
    :param seeds: the reset seeds
    :param step_cap: most steps per episode, besides the env's own limit
    :return: the env's report; episodes per second count planning and env steps, not the
        computation of the optimum
    """
    report = EnvReport(env_id)
    env = make_env(env_id)
    has_optimum = True
    for seed in seeds:
        report.n_episodes += 1
        start = time.perf_counter()
        try:
            env.reset(seed=seed)
            episode = expert.start_episode(unwrap_minigrid(env), seed)
            success, length = False, 0
            while length < step_cap:
                action = episode.act()
                _, reward, terminated, truncated, _ = env.step(action)
                episode.observe(action, float(reward), terminated, truncated)
                length += 1
                if terminated or truncated:
                    success = float(reward) > 0
                    break
        except (UnsupportedEnvError, PlanningError) as error:
            report.first_error = report.first_error or str(error)
            continue
        finally:
            report.play_seconds += time.perf_counter() - start
        report.lengths.append(length)
        if not success:
            continue
        report.n_successes += 1
        if has_optimum:
            try:
                report.length_ratios.append(length / shortest_solution_length(env_id, seed))
            except UnsupportedEnvError:
                has_optimum = False
    return report


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--n-seeds", type=int, default=100, help="seeds 0 .. n-1 of each env")
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="ENV_ID",
        help=f"an env to add to {', '.join(DEFAULT_ENV_IDS)} (repeatable)",
    )
    parser.add_argument("--step-cap", type=int, default=2000, help="most steps per episode")
    parser.add_argument(
        "--max-search-states", type=int, default=200_000, help="most states one planner search may expand"
    )
    args = parser.parse_args()

    expert = PlannerExpert(max_search_states=args.max_search_states)
    print(HEADER)
    errors = []
    for env_id in dict.fromkeys([*DEFAULT_ENV_IDS, *args.env]):
        report = evaluate(expert, env_id, range(args.n_seeds), args.step_cap)
        print(report.row(), flush=True)
        if report.first_error:
            errors.append(f"{env_id}: {report.first_error}")
    for error in errors:
        print(f"first error on {error}")


if __name__ == "__main__":
    main()
