"""
The main job, small and on CPU (``make demo``, a few minutes on 2 cores): an expert plays
MiniGrid-DoorKey-5x5, its successful episodes become imitation demonstrations, and ``compare`` trains
LLM-initialised PPO (``llmae``: BC on those demonstrations, then PPO) against PPO from scratch on 2
seeds each, with the same hyperparameters and budget; ``report`` then aggregates them with rliable
(IQM, bootstrap CIs, time to 0.8) into report.md and plots.

The expert is an LLM when one is configured (``--model`` plus ``--base-url`` or ``$OPENAI_BASE_URL``);
otherwise the planner plays, announced here and recorded in the demonstrations' metadata.

    python examples/quickstart.py --out demo_output
    OPENAI_BASE_URL=http://localhost:11434/v1 python examples/quickstart.py --model llama3.1
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import time
from pathlib import Path

import datasets
import torch as th

from sb3_llmae import Expert, generate_demonstrations
from sb3_llmae.experiments import CompareSettings, compare, plan_runs, resolve_methods, write_report
from sb3_llmae.experts import LLMExpert, PlannerExpert
from sb3_llmae.training.config import CRITIC_WARMUP_STEPS, EvalConfig


def choose_expert(args: argparse.Namespace, out: Path) -> tuple[Expert, str]:
    """
    :return: the LLM expert if one is configured, else the planner; and a line saying which and why
    """
    if args.model and (
        args.base_url or os.environ.get("OPENAI_BASE_URL") or os.environ.get("OPENAI_API_KEY")
    ):
        expert = LLMExpert(args.model, mode=args.mode, base_url=args.base_url, cache=out / "llm_cache.sqlite")
        return expert, f"LLM expert: {args.model} ({args.mode} mode)"
    note = (
        "No LLM endpoint configured (pass --model NAME and set OPENAI_BASE_URL, e.g. "
        "http://localhost:11434/v1 for Ollama): the PLANNER expert plays instead of an LLM."
    )
    return PlannerExpert(), note


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--env", default="MiniGrid-DoorKey-5x5-v0")
    parser.add_argument("--episodes", type=int, default=20, help="expert episodes")
    parser.add_argument("--steps", type=int, default=10_000, help="PPO env steps per run, warm-up included")
    parser.add_argument(
        "--warmup-steps",
        type=int,
        default=None,
        help=f"llmae's critic warm-up (actor frozen; default {CRITIC_WARMUP_STEPS}), part of --steps: keep "
        "it well below",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--eval-freq", type=int, default=2_500, help="env steps between evaluations")
    parser.add_argument("--eval-episodes", type=int, default=10, help="episodes per evaluation")
    parser.add_argument("--workers", type=int, default=2, help="runs trained at once")
    parser.add_argument("--reps", type=int, default=10_000, help="bootstrap resamples of the report")
    parser.add_argument("--model", help="LLM model name; needs an endpoint ($OPENAI_BASE_URL or --base-url)")
    parser.add_argument("--base-url")
    parser.add_argument("--mode", choices=("step", "plan"), default="step")
    parser.add_argument("--out", default="demo_output")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    datasets.disable_progress_bars()
    th.set_num_threads(1)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()

    expert, expert_note = choose_expert(args, out)
    print(f"==> {expert_note}")
    demos = generate_demonstrations(args.env, expert, args.episodes, seed=0, out_dir=out / "demonstrations")
    stats = demos.stats
    print(
        f"[1/3] demonstrations: {stats['successes']}/{stats['episodes']} successful episodes, "
        f"{stats['transitions']} transitions -> {out / 'demonstrations'}"
    )

    settings = CompareSettings(
        args.env,
        steps=args.steps,
        demos=str(out / "demonstrations"),
        evaluation=EvalConfig(freq=args.eval_freq, n_episodes=args.eval_episodes),
    )
    llmae, scratch = resolve_methods(["llmae", "scratch"])
    if args.warmup_steps is not None:
        llmae = dataclasses.replace(llmae, critic_warmup_steps=args.warmup_steps)
    runs = plan_runs([llmae, scratch], args.seeds, settings, out / "runs")
    print(
        f"[2/3] compare: llmae vs scratch, seeds {args.seeds}, {args.steps} env steps each -> {out / 'runs'}"
    )
    outcomes = compare(runs, workers=args.workers)
    failed = [outcome for outcome in outcomes if outcome.status == "failed"]
    for outcome in failed:
        print(f"      {outcome.key} FAILED: {outcome.error}")

    report = write_report(out / "runs", out / "report", reps=args.reps, title=f"{args.env}: llmae vs scratch")
    by_method = report.summaries
    print("[3/3] report (final IQM over seeds, greedy and sampled success):")
    for method, summaries in by_method.items():
        greedy, sampled = summaries.get("success_greedy"), summaries.get("success")
        print(
            f"      {method:8s} greedy {greedy.final.value if greedy else float('nan'):.2f}  "
            f"sampled {sampled.final.value if sampled else float('nan'):.2f}"
        )
    print(f"report: {report.report_path.resolve()}")
    for path in report.plots:
        print(f"plot:   {path.resolve()}")
    print(f"wall time: {time.perf_counter() - start:.0f} s")
    if failed:
        raise SystemExit(1)


if __name__ == "__main__":
    main()
