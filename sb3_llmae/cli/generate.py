"""``sb3-llmae generate``: roll an expert (planner or LLM) out into demonstrations."""

from __future__ import annotations

import argparse
import time
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb3_llmae.cli.checks import (
    AT_LEAST_ONE,
    MAX_SECONDS,
    NON_NEGATIVE,
    POSITIVE,
    PROBABILITY,
    SECONDS,
    Range,
    check_ranges,
)
from sb3_llmae.cli.config_flags import DefaultsHelpFormatter

# Light modules only: the parser builds from them; the commands import torch, SB3 and the rest.
from sb3_llmae.experts.base import EXPERT_KINDS
from sb3_llmae.experts.llm.cache import default_cache_path
from sb3_llmae.experts.llm.prices import TokenPrices
from sb3_llmae.experts.llm.settings import (
    DECISIONS,
    DEFAULT_HISTORY_LENGTH,
    DEFAULT_LLM_MODE,
    DEFAULT_MAX_PLANS,
    DEFAULT_PLANS_PER_EPISODE,
    HIGH_CUT_RATE,
    HIGH_FALLBACK_RATE,
    LLM_MODES,
    TEMPLATE_NAMES,
    BatchSettings,
    ChatSettings,
)
from sb3_llmae.registration import DEFAULT_OBS_MODE, OBS_MODES

if TYPE_CHECKING:
    from sb3_llmae.experts import Expert, LLMExpert

CHAT_DEFAULTS = ChatSettings()
# The ChatSettings fields that are flags (--max-tokens for max_tokens, ...), with their type and help.
CHAT_FLAGS: tuple[tuple[str, type, str], ...] = (
    ("temperature", float, "sampling temperature"),
    ("max_tokens", int, "most tokens per reply"),
    ("timeout", float, "seconds one request attempt may take in all, reply included"),
    ("max_retries", int, "retries on 429 / 5xx / timeouts"),
    ("rpm", float, "most requests per minute, over all workers (default: no limit of its own)"),
    ("tpm", float, "most tokens per minute, over all workers (default: no limit)"),
)
BATCH_DEFAULTS = BatchSettings()
# The numeric flags' ranges, checked before anything is built (--seed by generate_demonstrations).
RANGES = {
    "--episodes": AT_LEAST_ONE,
    "--max-episode-steps": AT_LEAST_ONE,
    "--workers": Range(1, 1024),
    "--noise": PROBABILITY,
    "--temperature": Range(0, 10),
    "--max-tokens": AT_LEAST_ONE,
    "--timeout": SECONDS,
    "--max-retries": Range(0, 100),
    "--rpm": POSITIVE,
    "--tpm": POSITIVE,
    "--price-in": NON_NEGATIVE,
    "--price-out": NON_NEGATIVE,
    "--steps-estimate": AT_LEAST_ONE,
    "--plans-estimate": POSITIVE,
    "--completion-tokens-estimate": NON_NEGATIVE,
    "--batch-poll-interval": Range(0, MAX_SECONDS, unit="seconds"),
}


def expert_from_args(args: argparse.Namespace) -> Expert:
    """
    :param args: parsed ``generate`` arguments
    :return: the expert they name (see :func:`~sb3_llmae.experts.make_expert`)
    """
    from sb3_llmae.experts.factory import make_expert
    from sb3_llmae.experts.llm.prompts import PLAN_TEMPLATES, STEP_TEMPLATES

    if args.expert == "planner":
        for flag, value in (("--batch", args.batch), ("--dry-run", args.dry_run)):
            if value:
                raise ValueError(f"{flag} is for --expert llm: the planner calls no model.")
        return make_expert("planner", env_id=args.env, noise=args.noise, noise_seed=args.noise_seed)
    stop = CHAT_DEFAULTS.stop if args.stop is None else tuple(s for s in args.stop if s.lower() != "none")
    settings = ChatSettings(stop=stop or None, **{name: getattr(args, name) for name, _, _ in CHAT_FLAGS})
    if args.max_history < 0:
        raise ValueError(f"--max-history must be >= 0, got {args.max_history}.")
    return make_expert(
        args.expert,
        model=args.model,
        mode=args.mode,
        base_url=args.base_url,
        settings=settings,
        cache=None if args.no_cache else Path(args.cache or default_cache_path()),
        prices=prices_of(args),
        noise=args.noise,
        noise_seed=args.noise_seed,
        batch=args.batch,
        dry_run=args.dry_run,
        llm_kwargs={
            "decision": args.decision,
            "step_template": STEP_TEMPLATES[args.template],
            "plan_template": PLAN_TEMPLATES[args.template],
            "history_length": args.max_history,
            "max_plans": args.max_plans,
        },
    )


def prices_of(args: argparse.Namespace) -> TokenPrices | None:
    """
    :param args: parsed ``generate`` arguments
    :return: the token prices they give, or ``None`` when they give none
    """
    if args.price_in is None and args.price_out is None:
        return None
    if args.price_in is None or args.price_out is None:
        raise ValueError("Give both --price-in and --price-out (USD per million prompt / completion tokens).")
    return TokenPrices(prompt=args.price_in, completion=args.price_out)


def usage_line(usage: dict[str, Any]) -> str:
    """
    :param usage: an LLM expert's usage (``LLMExpert.usage()``)
    :return: calls, cache hits, retries, tokens and cost in one line
    """
    cost = usage.get("cost_usd")
    return (
        f"calls: {usage['calls']}  cache hits: {usage['cache_hits']}  retries: {usage['retries']}  "
        f"tokens: {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion  "
        f"cost: {'$' + format(cost, '.4f') if cost is not None else 'n/a (give --price-in/--price-out)'}"
    )


def cmd_dry_run(args: argparse.Namespace, expert: LLMExpert) -> int:
    """Print the expected calls, tokens and cost of the run, without playing it."""
    from sb3_llmae.experts.llm.cost import estimate_generation_cost

    estimate = estimate_generation_cost(
        args.env,
        expert,
        args.episodes,
        seed=args.seed,
        max_episode_steps=args.max_episode_steps,
        steps_per_episode=args.steps_estimate,
        plans_per_episode=args.plans_estimate,
        completion_tokens_per_call=args.completion_tokens_estimate,
        prices=expert.prices,
    )
    cost = f"${estimate.cost:.4f}" if estimate.cost is not None else "n/a (give --price-in/--price-out)"
    print(
        "\n".join(
            [
                f"dry run: {args.env}, {estimate.episodes} episodes, {args.mode} mode, model {args.model!r} "
                "(no episode played, no call made)",
                f"expected calls: {estimate.calls} ({estimate.calls_per_episode:g} per episode, "
                "no cache hits)",
                f"expected tokens: {estimate.prompt_tokens} prompt "
                f"({estimate.prompt_tokens_per_call:.0f} per call) + {estimate.completion_tokens} completion "
                f"({estimate.completion_tokens_per_call} per call)",
                f"expected cost: {cost}",
                f"basis: {estimate.basis}",
            ]
        )
    )
    return 0


def cmd_generate(args: argparse.Namespace) -> int:
    """Generate demonstrations with an expert and print a summary."""
    check_ranges(args, RANGES)
    from sb3_llmae.demonstrations import generate_demonstrations
    from sb3_llmae.demonstrations.rollout import rollout_episode
    from sb3_llmae.experts import LLMExpert, NoisyExpert
    from sb3_llmae.experts.llm.batch import fill_cache_by_batches

    expert = expert_from_args(args)
    if args.dry_run:
        assert isinstance(expert, LLMExpert)
        return cmd_dry_run(args, expert)
    start = time.perf_counter()
    if args.batch:
        assert isinstance(expert, LLMExpert)
        fill_cache_by_batches(
            expert,
            partial(
                rollout_episode,
                args.env,
                obs_mode=args.obs_mode,
                max_episode_steps=args.max_episode_steps,
            ),
            range(args.seed, args.seed + args.episodes),
            args.out,
            BatchSettings(poll_interval_s=args.batch_poll_interval),
            progress_bar=not args.no_progress,
        )
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
        lines.append(usage_line(inner.usage()))
        lines += llm_reply_lines(demos.metadata["episodes"], stats)
        if stats["fallback_rate"] >= HIGH_FALLBACK_RATE:
            lines.append(
                "WARNING: a high fallback rate: these episodes show the fallback action, not the model. "
                "Check a transcript, --model and the endpoint."
            )
    lines += [f"wall time: {time.perf_counter() - start:.1f} s", f"demonstrations written to {args.out}"]
    print("\n".join(lines))
    return 0


def llm_reply_lines(episodes: list[dict[str, Any]], stats: dict[str, Any]) -> list[str]:
    """
    :param episodes: the per-episode metadata of an LLM run
    :param stats: the run's statistics
    :return: the summary lines on fallbacks (and why) and on replies cut by ``max_tokens``
    """
    budget = sum(int(episode.get("fallbacks_max_plans", 0)) for episode in episodes)
    fallbacks = sum(int(episode.get("fallbacks", 0)) for episode in episodes)
    if fallbacks == 0:
        why = "no fallback"
    elif budget == fallbacks:
        why = "all after the plan budget ran out: raise --max-plans"
    elif budget:
        why = (
            f"{fallbacks - budget} after replies without a valid action, {budget} after the plan budget "
            "ran out"
        )
    else:
        why = "no valid action in the reply"
    lines = [
        f"fallback rate: {stats['fallback_rate']:.1%} of steps ({why}); "
        f"{stats['mostly_fallback_episodes']} episodes played mostly by the fallback"
    ]
    replies = sum(int(episode.get("requests", 0)) for episode in episodes)
    cut = sum(int(episode.get("cut_replies", 0)) for episode in episodes)
    if replies:
        lines.append(f"replies cut by max_tokens: {cut} of {replies} ({cut / replies:.0%})")
        if cut / replies >= HIGH_CUT_RATE:
            lines.append(
                "WARNING: many replies were cut by max_tokens (finish_reason 'length'): raise --max-tokens, "
                "or check that the stop sequences (--stop) end the answer format."
            )
    return lines


def add_generate_parser(subparsers: argparse._SubParsersAction) -> None:
    """:param subparsers: the ``sb3-llmae`` subcommands, to which ``generate`` is added"""
    parser = subparsers.add_parser(
        "generate", help="roll an expert out into demonstrations", formatter_class=DefaultsHelpFormatter
    )
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument(
        "--expert",
        choices=EXPERT_KINDS,
        default="planner",
        help="planner: search on the full grid (minigrid's BabyAI bot on BabyAI-* ids); llm: a chat model",
    )
    parser.add_argument("--episodes", type=int, default=50, help="episodes to play")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first episode (then seed+1, ...)")
    parser.add_argument(
        "--obs-mode", choices=OBS_MODES, default=DEFAULT_OBS_MODE, help="observations to store"
    )
    parser.add_argument(
        "--max-episode-steps", type=int, default=None, help="step limit of an episode (default: the env's)"
    )
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
    llm.add_argument(
        "--mode", choices=LLM_MODES, default=DEFAULT_LLM_MODE, help="one request per step, or one plan"
    )
    llm.add_argument(
        "--decision",
        choices=DECISIONS,
        default="text",
        help="step mode: parse free text; take the most probable action token (logprobs: one token per "
        "step, its distribution kept for soft-target BC); or a JSON-schema answer (json)",
    )
    llm.add_argument(
        "--template",
        choices=TEMPLATE_NAMES,
        default="full",
        help="prompt: with examples (full), without (zero-shot), or short for small contexts (compact)",
    )
    llm.add_argument(
        "--max-history",
        type=int,
        default=DEFAULT_HISTORY_LENGTH,
        help="recent actions named in the step prompt",
    )
    llm.add_argument(
        "--max-plans", type=int, default=DEFAULT_MAX_PLANS, help="plan mode: most plans per episode"
    )
    llm.add_argument(
        "--stop",
        action="append",
        help="a sequence that ends a reply (repeat for several, at most 4; 'none': send none); default: "
        + ", ".join(repr(s) for s in CHAT_DEFAULTS.stop or ()),
    )
    for name, kind, text in CHAT_FLAGS:
        flag = "--" + name.replace("_", "-")
        llm.add_argument(flag, dest=name, type=kind, default=getattr(CHAT_DEFAULTS, name), help=text)
    llm.add_argument("--cache", help=f"SQLite response cache (default: {default_cache_path()})")
    llm.add_argument("--no-cache", action="store_true", help="always ask the endpoint")
    llm.add_argument("--price-in", type=float, help="USD per million prompt tokens (for the cost figures)")
    llm.add_argument("--price-out", type=float, help="USD per million completion tokens")
    cost = parser.add_argument_group("cost estimate (--dry-run)")
    cost.add_argument(
        "--dry-run",
        action="store_true",
        help="print expected calls, tokens and cost; play nothing, call nothing",
    )
    cost.add_argument(
        "--steps-estimate", type=int, help="steps per episode in step mode (default: step limit)"
    )
    cost.add_argument(
        "--plans-estimate",
        type=int,
        default=DEFAULT_PLANS_PER_EPISODE,
        help="plan requests per episode in plan mode",
    )
    cost.add_argument(
        "--completion-tokens-estimate", type=int, help="completion tokens per call (default: --max-tokens)"
    )
    batch = parser.add_argument_group("OpenAI Batch API (--mode plan)")
    batch.add_argument(
        "--batch",
        action="store_true",
        help="send the plan requests as batches (half price, results within the batch window); "
        "re-running into the same --out picks a submitted batch up",
    )
    batch.add_argument(
        "--batch-poll-interval",
        type=float,
        default=BATCH_DEFAULTS.poll_interval_s,
        help="seconds between polls",
    )
    parser.set_defaults(func=cmd_generate)
