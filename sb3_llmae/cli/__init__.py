"""The ``sb3-llmae`` command line: ``generate`` demonstrations, ``pretrain`` a PPO model on them,
``train`` it (or a PPO from scratch), ``record`` its episodes to a GIF. One module per subcommand."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence

import datasets

from sb3_llmae import __version__
from sb3_llmae.cli.compare import add_compare_parser
from sb3_llmae.cli.generate import add_generate_parser
from sb3_llmae.cli.pretrain import add_pretrain_parser
from sb3_llmae.cli.record import add_record_parser
from sb3_llmae.cli.report import add_report_parser
from sb3_llmae.cli.train import add_train_parser
from sb3_llmae.experts.llm import LLMEndpointError

# Loggers of the HTTP stack under the openai client, whose INFO lines only -v shows.
QUIET_LOGGERS = ("httpx", "httpx2", "httpcore", "httpcore2", "openai")

PARSER_BUILDERS: tuple[Callable[[argparse._SubParsersAction], None], ...] = (
    add_generate_parser,
    add_pretrain_parser,
    add_train_parser,
    add_record_parser,
    add_compare_parser,
    add_report_parser,
)


def build_parser() -> argparse.ArgumentParser:
    """:return: the ``sb3-llmae`` argument parser"""
    parser = argparse.ArgumentParser(prog="sb3-llmae", description=__doc__)
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
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
    if not args.verbose:
        # The HTTP client logs every request at INFO: thousands of lines for a generation run.
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, NotImplementedError, ImportError, LLMEndpointError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
