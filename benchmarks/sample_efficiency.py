"""
Sample efficiency of PPO initialised by ``llm_init_ppo`` (BC on demonstrations, critic warm-up,
optionally a KL term towards the behaviour-cloned prior) against PPO from scratch with the same
hyperparameters: a client of the experiments layer (``compare`` trains the runs, ``write_report``
aggregates them).

Demonstrations (``--demos``): ``planner`` (perfect), ``noisy`` (the planner taking a uniformly random
action with probability ``--noise``, 0.5 by default: about 70% success within 50 steps on
DoorKey-8x8, like the reference LLM), or a directory written by ``sb3-llmae generate``.

Every ``--eval-every`` env steps each run plays the fixed evaluation seeds twice: greedy actions
(``predict(deterministic=True)``, what a user deploys) and sampled ones (what the reference
system reports). Per method it prints the IQM across seeds of both success curves (rliable's IQM,
from the report), the step at which each IQM first reaches 0.8 (TTT@0.8; warm-up steps count) and the
lowest IQM after that step. Runs go in parallel worker processes, one torch thread each; the runs,
``report.md`` and the figures stay in ``--out`` (re-running into it skips the finished runs).

Every llm_init option defaults to the library's own default (``BCConfig``, ``llm_init_ppo``); the
flags override them to compare options.

    python benchmarks/sample_efficiency.py --demos noisy [--seeds 0 1 2 3 4] [--steps 30000] \\
        [--kl-coef 0.5] [--critic-learning-rate 2.5e-4] [--workers 2] [--out runs/sample_efficiency]
"""

from __future__ import annotations

import argparse
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from sb3_llmae import generate_demonstrations, load_demonstrations
from sb3_llmae.experiments import CompareSettings, MethodSpec, Report, compare, plan_runs, write_report
from sb3_llmae.experiments.aggregate import REPS, THRESHOLD
from sb3_llmae.experts import NoisyExpert, PlannerExpert
from sb3_llmae.training import REFERENCE_PPO_KWARGS
from sb3_llmae.training.config import BCConfig, EvalConfig, KLConfig

METHODS = ("llm_init", "scratch")
# metric of the report -> how this benchmark names it
SUCCESS_METRICS = {"success_greedy": "greedy", "success": "sampled"}
BC_DEFAULTS = BCConfig()
KL_DEFAULTS = KLConfig()


def optional(kind: Callable[[str], Any]) -> Callable[[str], Any]:
    """:return: a flag parser of ``kind`` that reads ``none`` as ``None``"""

    def parse(text: str) -> Any:
        return None if text.lower() == "none" else kind(text)

    return parse


def prepare_demonstrations(args: argparse.Namespace, out: Path) -> str:
    """:return: the directory of the demonstrations ``--demos`` names (made under ``out`` if generated)"""
    if args.demos not in ("planner", "noisy"):
        demos = load_demonstrations(args.demos)
        if demos.env_id != args.env:
            raise ValueError(f"{args.demos} holds demonstrations of {demos.env_id}, not of --env {args.env}.")
        directory = Path(args.demos)
    else:
        expert = (
            PlannerExpert() if args.demos == "planner" else NoisyExpert(PlannerExpert(), args.noise, seed=0)
        )
        demo_steps = args.demo_max_episode_steps
        if demo_steps is None:
            demo_steps = args.max_episode_steps if args.demos == "planner" else 50
        directory = out / f"demonstrations_{args.demos}"
        demos = generate_demonstrations(
            args.env,
            expert,
            args.demo_episodes,
            seed=0,
            max_episode_steps=demo_steps,
            progress_bar=False,
            out_dir=directory,
        )
    stats = demos.stats
    print(
        f"{args.env}: demonstrations {args.demos}"
        f"{f' (noise {args.noise})' if args.demos == 'noisy' else ''}: {stats['successes']} of "
        f"{stats['episodes']} episodes successful, {stats['transitions']} transitions",
        flush=True,
    )
    return str(directory)


def method_specs(args: argparse.Namespace) -> list[MethodSpec]:
    """:return: the methods ``--methods`` names, with the llm_init options of the flags"""
    llm_init = MethodSpec(
        "llm_init",
        init="actor",
        algo="klppo",
        bc=BCConfig(
            stop_at_success=args.stop_at_success,
            learning_rate=args.bc_learning_rate,
            epochs=args.bc_epochs,
            eval_every=args.bc_eval_every,
            patience=args.bc_patience,
            max_entropy=args.bc_max_entropy,
        ),
        critic_warmup_steps=args.warmup_steps,
        ppo_kwargs={
            "kl_coef": args.kl_coef,
            "kl_decay_steps": args.kl_decay_steps,
            "critic_learning_rate": args.critic_learning_rate,
        },
    )
    by_name = {"llm_init": llm_init, "scratch": MethodSpec("scratch")}
    return [by_name[name] for name in args.methods]


def describe(method: MethodSpec) -> str:
    """:return: what a method of this benchmark sets"""
    if not method.needs_demos:
        return f"{method.init}, {method.algo}"
    warmup = "llm_init_ppo's" if method.critic_warmup_steps is None else method.critic_warmup_steps
    return f"{method.algo}, BC {method.bc}, critic warm-up {warmup} steps, {dict(method.ppo_kwargs)}"


def format_method(method: str, report: Report) -> str:
    """:return: one method's IQM success curves (greedy, sampled), TTT@threshold and lowest IQM after it"""
    summaries = report.summaries[method]
    lines = [f"== {method} ({summaries['success'].n_runs} seeds)"]
    for metric, name in SUCCESS_METRICS.items():
        if metric not in summaries:
            continue
        summary, curve = summaries[metric], report.curves[metric][method]
        ttt = summary.ttt_iqm
        lines.append(
            f"  IQM {name:7s} TTT@{THRESHOLD}: {'never' if ttt is None else ttt:>6}  final: "
            f"{summary.final.value:.2f} [{summary.final.low:.2f}, {summary.final.high:.2f}]  curve: "
            + " ".join(f"{step}:{value:.2f}" for step, value in zip(curve.steps, curve.iqm, strict=True))
        )
        if summary.lowest_after_reached is not None:
            lines.append(
                f"    lowest IQM {name} success from step {ttt} on: {summary.lowest_after_reached:.2f}"
            )
    return "\n".join(lines)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    """:return: the benchmark's options"""
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
    parser.add_argument("--eval-episodes", type=int, default=EvalConfig().n_episodes)
    # apart from the demonstrations' seeds (0...) and from the library's default, as measured in docs/
    parser.add_argument("--eval-seed", type=int, default=10_000, help="first evaluation seed")
    parser.add_argument("--max-episode-steps", type=int, default=640)
    llm_init = parser.add_argument_group("llm_init options (default: BCConfig's and llm_init_ppo's)")
    llm_init.add_argument(
        "--stop-at-success",
        type=optional(float),
        default=BC_DEFAULTS.stop_at_success,
        help="BC's greedy success threshold ('none': every epoch)",
    )
    llm_init.add_argument("--bc-learning-rate", type=float, default=BC_DEFAULTS.learning_rate)
    llm_init.add_argument("--bc-epochs", type=int, default=BC_DEFAULTS.epochs)
    llm_init.add_argument("--bc-eval-every", type=int, default=BC_DEFAULTS.eval_every)
    llm_init.add_argument(
        "--bc-patience", type=optional(int), default=BC_DEFAULTS.patience, help="'none': no patience stop"
    )
    llm_init.add_argument(
        "--bc-max-entropy", type=optional(float), default=BC_DEFAULTS.max_entropy, help="'none': no cap"
    )
    llm_init.add_argument(
        "--warmup-steps", type=optional(int), default=None, help="critic warm-up ('none': llm_init_ppo's)"
    )
    llm_init.add_argument("--kl-coef", type=float, default=KL_DEFAULTS.kl_coef)
    llm_init.add_argument(
        "--kl-decay-steps",
        type=optional(int),
        default=KL_DEFAULTS.kl_decay_steps,
        help="'none': constant beta",
    )
    llm_init.add_argument(
        "--critic-learning-rate",
        type=optional(float),
        default=KL_DEFAULTS.critic_learning_rate,
        help="'none': the actor's",
    )
    ppo = parser.add_argument_group("PPO, both methods (default: REFERENCE_PPO_KWARGS)")
    ppo.add_argument("--learning-rate", type=float, default=REFERENCE_PPO_KWARGS["learning_rate"])
    ppo.add_argument("--ent-coef", type=float, default=REFERENCE_PPO_KWARGS["ent_coef"])
    ppo.add_argument("--n-epochs", type=int, default=REFERENCE_PPO_KWARGS["n_epochs"])
    parser.add_argument("--workers", type=int, default=2, help="runs in parallel (one core each)")
    parser.add_argument("--reps", type=int, default=REPS, help="bootstrap resamples of the report")
    parser.add_argument(
        "--out", default="runs/sample_efficiency", help="folder of the runs and the report (re-runs resume)"
    )
    args = parser.parse_args(argv)
    if args.out.endswith(".json"):
        parser.error(
            f"--out is now a folder (runs, report.md, summary.csv), not a JSON file: got {args.out}."
        )
    return args


def main(argv: Sequence[str] | None = None) -> None:
    args = parse_args(argv)
    logging.getLogger("absl").setLevel(logging.WARNING)  # rliable logs each bootstrap through absl
    start = time.perf_counter()
    out = Path(args.out)
    settings = CompareSettings(
        args.env,
        steps=args.steps,
        demos=prepare_demonstrations(args, out),
        max_episode_steps=args.max_episode_steps,
        evaluation=EvalConfig(seed=args.eval_seed, n_episodes=args.eval_episodes, freq=args.eval_every),
        ppo_kwargs={
            "learning_rate": args.learning_rate,
            "ent_coef": args.ent_coef,
            "n_epochs": args.n_epochs,
        },
    )
    methods = method_specs(args)
    print(
        f"PPO over REFERENCE_PPO_KWARGS: {dict(settings.ppo_kwargs)}, {settings.n_envs} envs, "
        f"max_episode_steps {args.max_episode_steps}\n"
        + "".join(f"{method.name}: {describe(method)}\n" for method in methods)
        + f"greedy and sampled success on seeds {args.eval_seed}..{args.eval_seed + args.eval_episodes - 1} "
        f"every {args.eval_every} steps; runs in {out / 'runs'}",
        flush=True,
    )
    outcomes = compare(plan_runs(methods, args.seeds, settings, out / "runs"), workers=args.workers)
    for outcome in outcomes:
        status = outcome.error if outcome.status == "failed" else f"{outcome.result.get('seconds')} s"
        print(f"{outcome.key}: {outcome.status} ({status})", flush=True)
    report = write_report(
        out / "runs", out / "report", reps=args.reps, title=f"{args.env}: sample efficiency"
    )
    print()
    for method in report.summaries:
        print(format_method(method, report))
    print(f"\nreport: {report.report_path}\nwall time: {time.perf_counter() - start:.0f} s")
    failed = [outcome.key for outcome in outcomes if outcome.status == "failed"]
    if failed:
        raise SystemExit(f"failed runs (tracebacks in their error.txt): {', '.join(failed)}")


if __name__ == "__main__":
    main()
