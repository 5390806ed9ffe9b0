"""
The main job, small and on CPU (about two minutes): an expert plays MiniGrid, its successful
episodes become imitation demonstrations, behaviour cloning seeds a PPO model that then trains, and
a PPO from scratch with the same hyperparameters and budget is trained beside it.

The expert is an LLM when one is configured (``--model`` plus ``--base-url`` or ``$OPENAI_BASE_URL``);
otherwise the planner plays, announced here and recorded in ``summary.json``.

    python examples/quickstart.py --out demo_output
    OPENAI_BASE_URL=http://localhost:11434/v1 python examples/quickstart.py --model llama3.1
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import time
from pathlib import Path

import datasets
import torch as th

from sb3_llmae import (
    Expert,
    LLMExpert,
    PlannerExpert,
    evaluate_success,
    generate_demonstrations,
    llm_init_ppo,
    make_ppo,
)

EVAL_SEEDS = tuple(range(10_000, 10_050))


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
    parser.add_argument("--steps", type=int, default=10_000, help="PPO env steps, warm-up included")
    parser.add_argument("--seed", type=int, default=0)
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
    demos = generate_demonstrations(
        args.env, expert, args.episodes, seed=args.seed, out_dir=out / "demonstrations"
    )
    stats = demos.stats
    print(
        f"[1/3] demonstrations: {stats['successes']}/{stats['episodes']} successful episodes, "
        f"{stats['transitions']} transitions -> {out / 'demonstrations'}"
    )

    model = llm_init_ppo(
        args.env, demos, seed=args.seed, tensorboard_log=str(out / "tensorboard"), tb_log_name="llm_init"
    )
    bc_success = evaluate_success(model, args.env, EVAL_SEEDS).success_rate
    warmup_steps = model.num_timesteps
    model.learn(args.steps - model.num_timesteps, reset_num_timesteps=False)
    model.save(out / "llm_init_ppo.zip")
    llm_init_success = evaluate_success(model, args.env, EVAL_SEEDS).success_rate
    print(
        f"[2/3] llm_init_ppo: greedy success {bc_success:.0%} after BC and {warmup_steps} steps of critic "
        f"warm-up, {llm_init_success:.0%} after {model.num_timesteps} env steps -> {out / 'llm_init_ppo.zip'}"
    )

    scratch = make_ppo(args.env, seed=args.seed, tensorboard_log=str(out / "tensorboard"))
    scratch.learn(args.steps, tb_log_name="scratch")
    scratch_success = evaluate_success(scratch, args.env, EVAL_SEEDS).success_rate
    print(f"[3/3] PPO from scratch: greedy success {scratch_success:.0%} after {scratch.num_timesteps} steps")

    summary = {
        "env_id": args.env,
        "expert": expert.describe(),
        "expert_note": expert_note,
        "demonstrations": stats,
        "eval_seeds": list(EVAL_SEEDS),
        "greedy_success": {
            "bc": bc_success,
            "llm_init_ppo": llm_init_success,
            "scratch_ppo": scratch_success,
        },
        "env_steps": args.steps,
        "wall_seconds": round(time.perf_counter() - start, 1),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"Output: {out.resolve()} (summary.json, demonstrations/, llm_init_ppo.zip, tensorboard/)")


if __name__ == "__main__":
    main()
