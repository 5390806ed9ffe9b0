"""
Sample efficiency of PPO initialised by ``llm_init_ppo`` (BC on planner demonstrations, critic
warm-up) against PPO from scratch with the same hyperparameters, on MiniGrid-DoorKey-8x8.

Greedy success on fixed evaluation seeds every ``--eval-every`` env steps; per method and seed it
prints the success curve, the first step at which success reaches 0.8 (TTT@0.8; warm-up steps
count) and the lowest success after the first evaluation. Runs go in parallel processes, one
torch thread each.

The defaults are the tuned settings: BC (lr 1e-3) stops at 0.9 greedy success. The reference
recipe stops BC (lr 1e-4) at 0.15: ``--stop-at-success 0.15 --bc-learning-rate 1e-4``. PPO uses
the reference hyperparameters (``REFERENCE_PPO_KWARGS``) for both methods. ``--algos ppo maskable``
also runs sb3-contrib's ``MaskablePPO`` with the MiniGrid action masks (same hyperparameters).

    python benchmarks/sample_efficiency.py [--seeds 0 1 2] [--steps 50000] [--workers 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

import torch as th
from sb3_contrib import MaskablePPO
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_llmae import Demonstrations, generate_demonstrations, make_vec_env
from sb3_llmae.experts.planner import PlannerExpert
from sb3_llmae.training import REFERENCE_PPO_KWARGS, llm_init_ppo, make_ppo
from sb3_llmae.training.evaluation import evaluate_success

METHODS = ("llm_init", "scratch")
ALGOS: dict[str, type[OnPolicyAlgorithm]] = {"ppo": PPO, "maskable": MaskablePPO}
SUCCESS_TARGET = 0.8


@dataclass(frozen=True)
class Settings:
    """What every run shares."""

    env_id: str
    steps: int
    eval_every: int
    eval_seeds: tuple[int, ...]
    max_episode_steps: int
    n_envs: int
    ppo_kwargs: dict[str, Any]
    stop_at_success: float
    bc_learning_rate: float
    bc_epochs: int
    warmup_steps: int


@dataclass
class RunResult:
    """One method on one seed."""

    method: str
    seed: int
    algo: str = "ppo"
    curve: list[tuple[int, float]] = field(default_factory=list)
    bc_summary: str = ""
    wall_seconds: float = 0.0

    @property
    def steps_to_target(self) -> int | None:
        """:return: first evaluated step with success >= 0.8, or ``None``"""
        return next((step for step, success in self.curve if success >= SUCCESS_TARGET), None)

    @property
    def min_after_first_eval(self) -> float:
        """:return: lowest success after the first evaluation"""
        return min(success for _, success in self.curve[1:])

    @property
    def min_after_target(self) -> float | None:
        """:return: lowest success after first reaching 0.8, or ``None`` if it never did"""
        reached = self.steps_to_target
        return None if reached is None else min(success for step, success in self.curve if step >= reached)


class SuccessCurveCallback(BaseCallback):
    """
    Record the greedy success rate every ``every`` env steps (at exact multiples of ``every`` when
    it is a multiple of the number of envs).

    :param evaluate: returns the current greedy success rate
    :param every: env steps between evaluations
    :param curve: where ``(step, success)`` pairs are appended
    """

    def __init__(self, evaluate: Any, every: int, curve: list[tuple[int, float]]) -> None:
        super().__init__()
        self.evaluate = evaluate
        self.every = every
        self.curve = curve
        self.next_step = 0

    def _on_training_start(self) -> None:
        self.next_step = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_step:
            self.curve.append((self.num_timesteps, self.evaluate()))
            self.next_step += self.every
        return True


class _BCSummary(logging.Handler):
    """Keeps the summary line ``pretrain_bc`` logs."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


def run(method: str, seed: int, settings: Settings, demos: Demonstrations, algo: str = "ppo") -> RunResult:
    """
    :param method: ``"llm_init"`` or ``"scratch"``
    :param seed: seed of the model and its envs
    :param settings: the shared settings
    :param demos: planner demonstrations
    :param algo: ``"ppo"`` or ``"maskable"`` (MaskablePPO, MiniGrid action masks)
    :return: the success curve
    """
    th.set_num_threads(1)
    start = time.perf_counter()
    result = RunResult(method, seed, algo)
    env = make_vec_env(
        settings.env_id,
        n_envs=settings.n_envs,
        seed=seed,
        max_episode_steps=settings.max_episode_steps,
        action_masks=algo == "maskable",
    )
    if method == "llm_init":
        bc_summary = _BCSummary()
        logging.getLogger("sb3_llmae.training.bc").addHandler(bc_summary)
        logging.getLogger("sb3_llmae.training.bc").setLevel(logging.INFO)
        model = llm_init_ppo(
            env,
            demos,
            algo=ALGOS[algo],
            bc_kwargs={
                "stop_at_success": settings.stop_at_success,
                "learning_rate": settings.bc_learning_rate,
                "epochs": settings.bc_epochs,
            },
            critic_warmup_steps=settings.warmup_steps,
            max_episode_steps=settings.max_episode_steps,
            seed=seed,
            **settings.ppo_kwargs,
        )
        result.bc_summary = bc_summary.message
    else:
        model = make_ppo(env, algo=ALGOS[algo], seed=seed, **settings.ppo_kwargs)

    def evaluate() -> float:
        return evaluate_success(
            model, settings.env_id, settings.eval_seeds, max_episode_steps=settings.max_episode_steps
        ).success_rate

    result.curve.append((model.num_timesteps, evaluate()))
    callback = SuccessCurveCallback(evaluate, settings.eval_every, result.curve)
    # The warm-up steps are training steps: they count towards the budget.
    model.learn(settings.steps - model.num_timesteps, callback=callback, reset_num_timesteps=False)
    result.wall_seconds = time.perf_counter() - start
    return result


def format_result(result: RunResult) -> str:
    """:return: one block of the report"""
    curve = " ".join(f"{step}:{success:.2f}" for step, success in result.curve)
    reached = "never" if result.steps_to_target is None else result.steps_to_target
    lines = [
        f"{result.method:9s} {result.algo:8s} seed {result.seed}: TTT@{SUCCESS_TARGET}: {reached}"
        f"  min after first eval: {result.min_after_first_eval:.2f}"
        f"  min after reaching {SUCCESS_TARGET}: "
        f"{'-' if result.min_after_target is None else f'{result.min_after_target:.2f}'}"
        f"  wall: {result.wall_seconds:.0f} s",
        f"    curve: {curve}",
    ]
    if result.bc_summary:
        lines.append(f"    {result.bc_summary}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--algos", nargs="+", choices=list(ALGOS), default=["ppo"])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--eval-every", type=int, default=2_500)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--eval-seed", type=int, default=10_000, help="first evaluation seed")
    parser.add_argument("--demo-episodes", type=int, default=50)
    parser.add_argument("--max-episode-steps", type=int, default=640)
    parser.add_argument("--stop-at-success", type=float, default=0.9, help="BC's greedy success threshold")
    parser.add_argument("--bc-learning-rate", type=float, default=1e-3)
    parser.add_argument("--bc-epochs", type=int, default=200)
    parser.add_argument("--warmup-steps", type=int, default=2048)
    parser.add_argument("--learning-rate", type=float, default=REFERENCE_PPO_KWARGS["learning_rate"])
    parser.add_argument("--ent-coef", type=float, default=REFERENCE_PPO_KWARGS["ent_coef"])
    parser.add_argument("--n-epochs", type=int, default=REFERENCE_PPO_KWARGS["n_epochs"])
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel (one core each)")
    parser.add_argument("--out", default=None, help="write the curves as JSON here")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    ppo_kwargs = {
        **REFERENCE_PPO_KWARGS,
        "learning_rate": args.learning_rate,
        "ent_coef": args.ent_coef,
        "n_epochs": args.n_epochs,
    }
    settings = Settings(
        env_id=args.env,
        steps=args.steps,
        eval_every=args.eval_every,
        eval_seeds=tuple(range(args.eval_seed, args.eval_seed + args.eval_episodes)),
        max_episode_steps=args.max_episode_steps,
        n_envs=4,
        ppo_kwargs=ppo_kwargs,
        stop_at_success=args.stop_at_success,
        bc_learning_rate=args.bc_learning_rate,
        bc_epochs=args.bc_epochs,
        warmup_steps=args.warmup_steps,
    )
    demos = generate_demonstrations(
        args.env, PlannerExpert(), args.demo_episodes, seed=0, max_episode_steps=args.max_episode_steps,
        progress_bar=False,
    )  # fmt: skip
    print(
        f"{args.env}: {demos.stats['successes']} planner demonstrations, "
        f"{demos.stats['transitions']} transitions\n"
        f"PPO: {ppo_kwargs}, {settings.n_envs} envs, max_episode_steps {args.max_episode_steps}\n"
        f"llm_init: BC lr {args.bc_learning_rate}, stop at greedy success {args.stop_at_success}, "
        f"critic warm-up {args.warmup_steps} steps\n"
        f"greedy success on seeds {args.eval_seed}..{args.eval_seed + args.eval_episodes - 1} "
        f"every {args.eval_every} steps",
        flush=True,
    )
    # Scratch runs evaluate failing (640-step) episodes: the longest jobs go first.
    jobs = [
        (method, seed, settings, demos, algo)
        for method in sorted(args.methods, reverse=True)
        for algo in args.algos
        for seed in args.seeds
    ]
    results = []
    with ProcessPoolExecutor(max_workers=args.workers) as executor:
        for future in as_completed([executor.submit(run, *job) for job in jobs]):
            results.append(future.result())
            print(f"done: {format_result(results[-1])}", flush=True)
    results.sort(key=lambda result: result.seed)
    print("\nsummary:")
    for method in args.methods:
        for algo in args.algos:
            print()
            for result in results:
                if (result.method, result.algo) == (method, algo):
                    print(format_result(result))
    print(f"\nwall time: {time.perf_counter() - start:.0f} s")
    if args.out:
        with open(args.out, "w") as file:
            json.dump(
                [
                    {
                        **asdict(r),
                        "steps_to_target": r.steps_to_target,
                        "min_after_first_eval": r.min_after_first_eval,
                    }
                    for r in results
                ],
                file,
                indent=2,
            )


if __name__ == "__main__":
    main()
