"""
Sample efficiency of PPO initialised by ``llm_init_ppo`` (BC on demonstrations, critic warm-up,
optionally a KL term towards the behaviour-cloned prior) against PPO from scratch with the same
hyperparameters.

Demonstrations (``--demos``): ``planner`` (perfect), ``noisy`` (the planner taking a uniformly random
action with probability ``--noise``, 0.5 by default: about 70% success within 50 steps on
DoorKey-8x8, like the reference LLM), or a directory written by ``sb3-llmae generate``.

Every ``--eval-every`` env steps each run plays the fixed evaluation seeds twice: greedy actions
(``predict(deterministic=True)``, what a user deploys) and sampled ones (what the reference
system reports). Per method it prints the IQM across seeds of both success curves (mean of the
middle half, as rliable's IQM), the step at which each IQM first reaches 0.8 (TTT@0.8; warm-up steps
count) and, per seed, the lowest success after that step. Runs go in parallel processes, one
torch thread each.

Every llm_init option defaults to ``llm_init_ppo``'s own default; the flags override them to
compare options.

    python benchmarks/sample_efficiency.py --demos noisy [--seeds 0 1 2 3 4] [--steps 30000] \\
        [--kl-coef 0.5] [--critic-learning-rate 2.5e-4] [--workers 2] [--out results.json]
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import json
import logging
import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch as th
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.on_policy_algorithm import OnPolicyAlgorithm

from sb3_llmae import Demonstrations, generate_demonstrations, load_demonstrations, make_vec_env
from sb3_llmae.cli.pretrain import optional_float, optional_int
from sb3_llmae.experts import NoisyExpert, PlannerExpert
from sb3_llmae.training import (
    REFERENCE_PPO_KWARGS,
    BCConfig,
    KLConfig,
    llm_init_ppo,
    make_ppo,
    pretrain_bc,
)
from sb3_llmae.training.evaluation import evaluate_success

# The settings' defaults (issue 15A: their one home is sb3_llmae.training.config).
LLM_INIT_BC_KWARGS = dataclasses.asdict(BCConfig())
LLM_INIT_PPO_KWARGS = dataclasses.asdict(KLConfig())

METHODS = ("llm_init", "scratch")
SUCCESS_TARGET = 0.8
Curve = list[tuple[int, float, float]]  # (step, greedy success, sampled success)


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
    llm_init_ppo_kwargs: dict[str, Any]
    bc_kwargs: dict[str, Any]
    warmup_steps: int


@dataclass
class RunResult:
    """One method on one seed."""

    method: str
    seed: int
    curve: Curve = field(default_factory=list)
    bc_summary: str = ""
    wall_seconds: float = 0.0


class SuccessCurveCallback(BaseCallback):
    """
    Record the greedy and sampled success rates every ``every`` env steps (at exact multiples of
    ``every`` when it is a multiple of the number of envs).

    :param evaluate: returns the current greedy and sampled success rates
    :param every: env steps between evaluations
    :param curve: where ``(step, greedy, sampled)`` triples are appended
    """

    def __init__(self, evaluate: Callable[[], tuple[float, float]], every: int, curve: Curve) -> None:
        super().__init__()
        self.evaluate = evaluate
        self.every = every
        self.curve = curve
        self.next_step = 0

    def _on_training_start(self) -> None:
        self.next_step = (self.num_timesteps // self.every + 1) * self.every

    def _on_step(self) -> bool:
        if self.num_timesteps >= self.next_step:
            self.curve.append((self.num_timesteps, *self.evaluate()))
            self.next_step += self.every
        return True


class _BCSummary(logging.Handler):
    """Keeps the summary line ``pretrain_bc`` logs."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.message = ""

    def emit(self, record: logging.LogRecord) -> None:
        self.message = record.getMessage()


def run(method: str, seed: int, settings: Settings, demos: Demonstrations) -> RunResult:
    """
    :param method: ``"llm_init"`` or ``"scratch"``
    :param seed: seed of the model and its envs
    :param settings: the shared settings
    :param demos: the demonstrations (used by ``llm_init``)
    :return: the success curves
    """
    th.set_num_threads(1)
    start = time.perf_counter()
    result = RunResult(method, seed)
    env = make_vec_env(
        settings.env_id, n_envs=settings.n_envs, seed=seed, max_episode_steps=settings.max_episode_steps
    )
    model: OnPolicyAlgorithm
    if method == "llm_init":
        bc_summary = _BCSummary()
        logging.getLogger("sb3_llmae.training.bc").addHandler(bc_summary)
        logging.getLogger("sb3_llmae.training.bc").setLevel(logging.INFO)
        model = llm_init_ppo(
            env,
            demos,
            bc_kwargs=settings.bc_kwargs,
            critic_warmup_steps=settings.warmup_steps,
            max_episode_steps=settings.max_episode_steps,
            seed=seed,
            **settings.ppo_kwargs,
            **settings.llm_init_ppo_kwargs,
        )
        result.bc_summary = bc_summary.message
    else:
        model = make_ppo(env, seed=seed, **settings.ppo_kwargs)

    def evaluate() -> tuple[float, float]:
        return tuple(  # type: ignore[return-value]
            evaluate_success(
                model,
                settings.env_id,
                settings.eval_seeds,
                max_episode_steps=settings.max_episode_steps,
                deterministic=deterministic,
            ).success_rate
            for deterministic in (True, False)
        )

    result.curve.append((model.num_timesteps, *evaluate()))
    callback = SuccessCurveCallback(evaluate, settings.eval_every, result.curve)
    # The warm-up steps are training steps: they count towards the budget.
    model.learn(settings.steps - model.num_timesteps, callback=callback, reset_num_timesteps=False)
    result.wall_seconds = time.perf_counter() - start
    return result


def iqm(values: Sequence[float]) -> float:
    """
    :param values: one score per seed
    :return: the interquartile mean: the mean of the middle half, a quarter cut at each end
        (``scipy.stats.trim_mean(values, 0.25)``, rliable's IQM)
    """
    ordered = np.sort(np.asarray(values, dtype=float))
    cut = int(0.25 * len(ordered))
    return float(ordered[cut : len(ordered) - cut].mean())


def iqm_curves(results: Sequence[RunResult]) -> list[tuple[int, float, float]]:
    """
    :param results: runs of one method, evaluated at the same steps
    :return: per evaluation step, the IQM across seeds of the greedy and of the sampled success
    """
    length = min(len(r.curve) for r in results)
    return [
        (
            results[0].curve[i][0],
            iqm([r.curve[i][1] for r in results]),
            iqm([r.curve[i][2] for r in results]),
        )
        for i in range(length)
    ]


def first_step_at(curve: Sequence[tuple[int, float]], target: float) -> int | None:
    """:return: the first step of ``curve`` whose value reaches ``target``, or ``None``"""
    return next((step for step, value in curve if value >= target), None)


def format_method(method: str, results: Sequence[RunResult]) -> str:
    """:return: the report of one method: IQM curves, TTT@0.8, per-seed curves and minima"""
    curve = iqm_curves(results)
    lines = [f"== {method} ({len(results)} seeds)"]
    for column, name in ((1, "greedy"), (2, "sampled")):
        ttt = first_step_at([(point[0], point[column]) for point in curve], SUCCESS_TARGET)
        lines.append(
            f"  IQM {name:7s} TTT@{SUCCESS_TARGET}: {'never' if ttt is None else ttt:>6}  final: "
            f"{curve[-1][column]:.2f}  curve: " + " ".join(f"{p[0]}:{p[column]:.2f}" for p in curve)
        )
        if ttt is not None:
            after = [min(point[column] for point in r.curve if point[0] >= ttt) for r in results]
            lines.append(
                f"    lowest {name} success per seed from step {ttt} on: "
                + " ".join(f"{value:.2f}" for value in after)
            )
    for result in results:
        lines.append(
            f"  seed {result.seed} ({result.wall_seconds:.0f} s) greedy/sampled: "
            + " ".join(f"{step}:{greedy:.2f}/{sampled:.2f}" for step, greedy, sampled in result.curve)
        )
        if result.bc_summary:
            lines.append(f"    {result.bc_summary}")
    return "\n".join(lines)


def make_demonstrations(args: argparse.Namespace) -> Demonstrations:
    """:return: the demonstrations ``--demos`` names"""
    if args.demos not in ("planner", "noisy"):
        demos = load_demonstrations(args.demos)
        if demos.env_id != args.env:
            raise ValueError(f"{args.demos} holds demonstrations of {demos.env_id}, not of --env {args.env}.")
        return demos
    expert = PlannerExpert() if args.demos == "planner" else NoisyExpert(PlannerExpert(), args.noise, seed=0)
    demo_steps = args.demo_max_episode_steps
    if demo_steps is None:
        demo_steps = args.max_episode_steps if args.demos == "planner" else 50
    return generate_demonstrations(
        args.env, expert, args.demo_episodes, seed=0, max_episode_steps=demo_steps, progress_bar=False
    )


def library_default(function: Callable[..., Any], name: str, overrides: Any = None) -> Any:
    """:return: the value a library function uses for ``name`` when not told otherwise"""
    if overrides is not None and name in overrides:
        return overrides[name]
    return inspect.signature(function).parameters[name].default


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--demos", default="noisy", help="planner, noisy, or a demonstrations directory")
    parser.add_argument("--noise", type=float, default=0.5, help="random-action rate of --demos noisy")
    parser.add_argument("--demo-episodes", type=int, default=50)
    parser.add_argument(
        "--demo-max-episode-steps",
        type=int,
        default=None,
        help="step limit of demonstration episodes (default: 50 for noisy, --max-episode-steps for planner)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", choices=METHODS, default=list(METHODS))
    parser.add_argument("--steps", type=int, default=30_000)
    parser.add_argument("--eval-every", type=int, default=2_000)
    parser.add_argument("--eval-episodes", type=int, default=20)
    parser.add_argument("--eval-seed", type=int, default=10_000, help="first evaluation seed")
    parser.add_argument("--max-episode-steps", type=int, default=640)
    llm_init = parser.add_argument_group("llm_init options (default: llm_init_ppo's)")
    llm_init.add_argument(
        "--stop-at-success",
        type=optional_float,
        default=library_default(pretrain_bc, "stop_at_success", LLM_INIT_BC_KWARGS),
        help="BC's greedy success threshold ('none': every epoch)",
    )
    llm_init.add_argument(
        "--bc-learning-rate",
        type=float,
        default=library_default(pretrain_bc, "learning_rate", LLM_INIT_BC_KWARGS),
    )
    llm_init.add_argument(
        "--bc-epochs", type=int, default=library_default(pretrain_bc, "epochs", LLM_INIT_BC_KWARGS)
    )
    llm_init.add_argument(
        "--warmup-steps", type=int, default=library_default(llm_init_ppo, "critic_warmup_steps")
    )
    llm_init.add_argument("--kl-coef", type=float, default=LLM_INIT_PPO_KWARGS["kl_coef"])
    llm_init.add_argument(
        "--kl-decay-steps",
        type=optional_int,
        default=LLM_INIT_PPO_KWARGS["kl_decay_steps"],
        help="'none': constant beta",
    )
    llm_init.add_argument(
        "--critic-learning-rate",
        type=optional_float,
        default=LLM_INIT_PPO_KWARGS["critic_learning_rate"],
        help="'none': the actor's",
    )
    ppo = parser.add_argument_group("PPO, both methods (default: REFERENCE_PPO_KWARGS)")
    ppo.add_argument("--learning-rate", type=float, default=REFERENCE_PPO_KWARGS["learning_rate"])
    ppo.add_argument("--ent-coef", type=float, default=REFERENCE_PPO_KWARGS["ent_coef"])
    ppo.add_argument("--n-epochs", type=int, default=REFERENCE_PPO_KWARGS["n_epochs"])
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
        llm_init_ppo_kwargs={
            "kl_coef": args.kl_coef,
            "kl_decay_steps": args.kl_decay_steps,
            "critic_learning_rate": args.critic_learning_rate,
        },
        bc_kwargs={
            "stop_at_success": args.stop_at_success,
            "learning_rate": args.bc_learning_rate,
            "epochs": args.bc_epochs,
        },
        warmup_steps=args.warmup_steps,
    )
    demos = make_demonstrations(args)
    stats = demos.stats
    print(
        f"{args.env}: demonstrations {args.demos}"
        f"{f' (noise {args.noise})' if args.demos == 'noisy' else ''}: {stats['successes']} of "
        f"{stats['episodes']} episodes successful, {stats['transitions']} transitions\n"
        f"PPO: {ppo_kwargs}, {settings.n_envs} envs, max_episode_steps {args.max_episode_steps}\n"
        f"llm_init: BC {settings.bc_kwargs}, critic warm-up {args.warmup_steps} steps, "
        f"{settings.llm_init_ppo_kwargs}\n"
        f"greedy and sampled success on seeds {args.eval_seed}..{args.eval_seed + args.eval_episodes - 1} "
        f"every {args.eval_every} steps",
        flush=True,
    )
    # Scratch runs evaluate failing (640-step) episodes: the longest jobs go first.
    jobs = [(method, seed) for method in sorted(args.methods, reverse=True) for seed in args.seeds]
    results: list[RunResult] = []
    with ProcessPoolExecutor(max_workers=args.workers) as executor:
        futures = [executor.submit(run, method, seed, settings, demos) for method, seed in jobs]
        for future in as_completed(futures):
            results.append(future.result())
            last = results[-1]
            curve = " ".join(f"{step}:{greedy:.2f}/{sampled:.2f}" for step, greedy, sampled in last.curve)
            print(f"done: {last.method} seed {last.seed} in {last.wall_seconds:.0f} s: {curve}", flush=True)
    results.sort(key=lambda result: result.seed)
    print()
    for method in args.methods:
        print(format_method(method, [r for r in results if r.method == method]))
    print(f"\nwall time: {time.perf_counter() - start:.0f} s")
    if args.out:
        with open(args.out, "w") as file:
            json.dump(
                {"settings": {**vars(args)}, "runs": [asdict(r) for r in results]},
                file,
                indent=2,
                default=lambda value: None if isinstance(value, float) and math.isnan(value) else str(value),
            )


if __name__ == "__main__":
    main()
