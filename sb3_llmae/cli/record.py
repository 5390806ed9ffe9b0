"""``sb3-llmae record``: episodes of a saved model rendered to an animated GIF."""

from __future__ import annotations

import argparse

from sb3_llmae.cli.config_flags import DefaultsHelpFormatter, add_config_flags
from sb3_llmae.record import RecordConfig, record_gif

RECORD_FLAGS = {"episodes": "--episodes", "seed": "--seed", "fps": "--fps"}


def cmd_record(args: argparse.Namespace) -> int:
    """Render episodes of a saved model to a GIF and say what each episode did."""
    recorded = record_gif(
        args.model,
        args.env,
        args.out,
        episodes=args.episodes,
        seed=args.seed,
        deterministic=not args.sampled,
        max_episode_steps=args.max_episode_steps,
        fps=args.fps,
    )
    for episode in recorded:
        print(
            f"seed {episode.seed}: {'success' if episode.success else 'failure'} in {episode.length} steps, "
            f"return {episode.episode_return:.3f}"
        )
    print(f"GIF written to {args.out}")
    return 0


def add_record_parser(subparsers: argparse._SubParsersAction) -> None:
    """:param subparsers: the ``sb3-llmae`` subcommands, to which ``record`` is added"""
    parser = subparsers.add_parser(
        "record",
        help="render episodes of a saved model to an animated GIF",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("model", help="model zip (PPO, MaskablePPO, RecurrentPPO, or a PPO subclass)")
    parser.add_argument("--env", required=True, help="MiniGrid / BabyAI id, e.g. MiniGrid-DoorKey-8x8-v0")
    parser.add_argument("--out", required=True, help="GIF to write")
    add_config_flags(parser, RecordConfig, RECORD_FLAGS)
    parser.add_argument(
        "--sampled", action="store_true", help="sample actions instead of taking the greedy one"
    )
    parser.add_argument(
        "--max-episode-steps", type=int, default=None, help="episode step limit (None: the env's own)"
    )
    parser.set_defaults(func=cmd_record)
