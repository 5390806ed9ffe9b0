"""The ``sb3-llmae`` command line: ``generate`` demonstrations, ``pretrain`` a PPO model on them,
``train`` it (or a PPO from scratch)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import datasets

from sb3_llmae.cli_train import add_pretrain_parser, add_train_parser
from sb3_llmae.demonstrations import generate_demonstrations
from sb3_llmae.envs import OBS_MODES
from sb3_llmae.experts import Expert
from sb3_llmae.experts.llm import LLM_MODES
from sb3_llmae.llm import LLMEndpointError

logger = logging.getLogger("sb3_llmae")

EXPERT_CHOICES = ("planner", "llm")


def default_cache_path() -> Path:
    """:return: the user-wide LLM response cache, ``$XDG_CACHE_HOME/sb3-llmae/responses.sqlite``"""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "sb3-llmae" / "responses.sqlite"


def make_expert(args: argparse.Namespace) -> Expert:
    """
    :param args: parsed ``generate`` arguments
    :return: the expert they name
    """
    if args.expert == "planner":
        from sb3_llmae.experts.planner import PlannerExpert

        return PlannerExpert()
    from sb3_llmae.experts.llm import LLMExpert

    if not args.model:
        raise ValueError(
            "--expert llm needs --model NAME (the model as the endpoint knows it, e.g. llama3.1)."
        )
    cache = None if args.no_cache else Path(args.cache or default_cache_path())
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
    return LLMExpert(
        args.model,
        mode=args.mode,
        base_url=args.base_url,
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
        max_retries=args.max_retries,
        cache=cache,
    )


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate demonstrations with an expert and print a summary."""
    expert = make_expert(args)
    start = time.perf_counter()
    demos = generate_demonstrations(
        args.env,
        expert,
        n_episodes=args.episodes,
        seed=args.seed,
        obs_mode=args.obs_mode,
        only_successful=not args.keep_failures,
        max_episode_steps=args.max_episode_steps,
        n_workers=args.workers,
        out_dir=args.out,
        progress_bar=not args.no_progress,
    )
    stats = demos.stats
    lines = [
        f"env: {args.env}  expert: {args.expert}",
        f"episodes: {stats['episodes']}  success rate: {stats['success_rate']:.1%}  "
        f"transitions: {stats['transitions']}  mean length: {stats['mean_length']:.1f}",
    ]
    usage = getattr(getattr(expert, "client", None), "usage", None)
    if usage is not None:
        lines.append(
            f"calls: {usage.calls}  cache hits: {usage.cache_hits}  retries: {usage.retries}  "
            f"tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
        )
    lines += [f"wall time: {time.perf_counter() - start:.1f} s", f"demonstrations written to {args.out}"]
    print("\n".join(lines))
    return 0


def add_generate_parser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("generate", help="roll an expert out into demonstrations")
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--expert", choices=EXPERT_CHOICES, default="planner")
    parser.add_argument("--episodes", type=int, default=50)
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (then seed+1, ...)")
    parser.add_argument("--obs-mode", choices=OBS_MODES, default="image")
    parser.add_argument("--max-episode-steps", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1, help="episodes played at once")
    parser.add_argument("--keep-failures", action="store_true", help="keep unsuccessful episodes too")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--out", required=True, help="output directory (re-running into it resumes)")
    llm = parser.add_argument_group("LLM expert (--expert llm)")
    llm.add_argument("--model", help="model name as the endpoint knows it, e.g. llama3.1")
    llm.add_argument(
        "--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL); key: $OPENAI_API_KEY"
    )
    llm.add_argument("--mode", choices=LLM_MODES, default="step", help="one request per step, or one plan")
    llm.add_argument("--temperature", type=float, default=0.0)
    llm.add_argument("--max-tokens", type=int, default=256)
    llm.add_argument("--timeout", type=float, default=60.0, help="seconds per request")
    llm.add_argument("--max-retries", type=int, default=5, help="retries on 429 / 5xx / timeouts")
    llm.add_argument("--cache", help=f"SQLite response cache (default: {default_cache_path()})")
    llm.add_argument("--no-cache", action="store_true", help="always ask the endpoint")
    parser.set_defaults(func=cmd_generate)


PARSER_BUILDERS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_generate_parser,
    add_pretrain_parser,
    add_train_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """:return: the ``sb3-llmae`` argument parser"""
    parser = argparse.ArgumentParser(prog="sb3-llmae", description=__doc__)
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_parser in PARSER_BUILDERS:
        add_parser(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Entry point of the ``sb3-llmae`` console script.

    :param argv: arguments (default: ``sys.argv[1:]``)
    :return: exit status
    """
    args = build_parser().parse_args(argv)
    # HuggingFace's "Saving the dataset" bars add nothing to ours
    datasets.disable_progress_bars()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, FileNotFoundError, NotImplementedError, LLMEndpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
