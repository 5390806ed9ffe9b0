"""``sb3-llmae generate``: roll an expert (planner or LLM) out into demonstrations."""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

from sb3_llmae.demonstrations import generate_demonstrations
from sb3_llmae.envs import OBS_MODES
from sb3_llmae.experts import Expert, LLMExpert, NoisyExpert, PlannerExpert
from sb3_llmae.experts.llm import ChatSettings
from sb3_llmae.experts.llm.expert import LLM_MODES

EXPERT_CHOICES = ("planner", "llm")
CHAT_DEFAULTS = ChatSettings()


def default_cache_path() -> Path:
    """:return: the user-wide LLM response cache, ``$XDG_CACHE_HOME/sb3-llmae/responses.sqlite``"""
    cache_home = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache_home) / "sb3-llmae" / "responses.sqlite"


def make_expert(args: argparse.Namespace) -> Expert:
    """
    :param args: parsed ``generate`` arguments
    :return: the expert they name, wrapped in a :class:`NoisyExpert` with ``--noise``
    """
    expert = make_base_expert(args)
    return NoisyExpert(expert, args.noise, seed=args.noise_seed) if args.noise != 0 else expert


def make_base_expert(args: argparse.Namespace) -> Expert:
    """
    :param args: parsed ``generate`` arguments
    :return: the expert ``--expert`` names
    """
    if args.expert == "planner":
        return PlannerExpert()
    if not args.model:
        raise ValueError(
            "--expert llm needs --model NAME (the model as the endpoint knows it, e.g. llama3.1)."
        )
    settings = ChatSettings(
        temperature=args.temperature,
        max_tokens=args.max_tokens,
        timeout=args.timeout,
        max_retries=args.max_retries,
    )
    cache = None if args.no_cache else Path(args.cache or default_cache_path())
    return LLMExpert(args.model, mode=args.mode, base_url=args.base_url, settings=settings, cache=cache)


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
    if isinstance(expert, NoisyExpert):
        lines[0] += f"  noise: {expert.epsilon} (seed {expert.seed})"
    inner = expert.expert if isinstance(expert, NoisyExpert) else expert
    if isinstance(inner, LLMExpert):
        usage = inner.client.usage
        lines.append(
            f"calls: {usage.calls}  cache hits: {usage.cache_hits}  retries: {usage.retries}  "
            f"tokens: {usage.prompt_tokens} prompt + {usage.completion_tokens} completion"
        )
    lines += [f"wall time: {time.perf_counter() - start:.1f} s", f"demonstrations written to {args.out}"]
    print("\n".join(lines))
    return 0


def add_generate_parser(subparsers: argparse._SubParsersAction) -> None:
    """:param subparsers: the ``sb3-llmae`` subcommands, to which ``generate`` is added"""
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
    parser.add_argument(
        "--noise",
        type=float,
        default=0.0,
        help="probability of a uniformly random action instead of the expert's at each step "
        "(0.5 with the planner on DoorKey-8x8 and --max-episode-steps 50: ~70%% success, like an LLM)",
    )
    parser.add_argument("--noise-seed", type=int, default=0, help="seed of the random actions of --noise")
    llm = parser.add_argument_group("LLM expert (--expert llm)")
    llm.add_argument("--model", help="model name as the endpoint knows it, e.g. llama3.1")
    llm.add_argument(
        "--base-url", help="OpenAI-compatible endpoint (default: $OPENAI_BASE_URL); key: $OPENAI_API_KEY"
    )
    llm.add_argument("--mode", choices=LLM_MODES, default="step", help="one request per step, or one plan")
    llm.add_argument("--temperature", type=float, default=CHAT_DEFAULTS.temperature)
    llm.add_argument("--max-tokens", type=int, default=CHAT_DEFAULTS.max_tokens)
    llm.add_argument("--timeout", type=float, default=CHAT_DEFAULTS.timeout, help="seconds per request")
    llm.add_argument(
        "--max-retries", type=int, default=CHAT_DEFAULTS.max_retries, help="retries on 429 / 5xx / timeouts"
    )
    llm.add_argument("--cache", help=f"SQLite response cache (default: {default_cache_path()})")
    llm.add_argument("--no-cache", action="store_true", help="always ask the endpoint")
    parser.set_defaults(func=cmd_generate)
