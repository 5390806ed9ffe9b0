"""The ``sb3-llmae`` command line: ``generate`` demonstrations, ``pretrain`` a PPO model on them,
``train`` it (or a PPO from scratch), ``record`` its episodes to a GIF. One module per subcommand."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Callable, Sequence

from sb3_llmae import __version__
from sb3_llmae._lazy import IMITATION_MISSING
from sb3_llmae.cli.compare import add_compare_parser
from sb3_llmae.cli.generate import add_generate_parser
from sb3_llmae.cli.pretrain import add_pretrain_parser
from sb3_llmae.cli.record import add_record_parser
from sb3_llmae.cli.report import add_report_parser
from sb3_llmae.cli.secrets import Redactor, secrets_of
from sb3_llmae.cli.train import add_train_parser
from sb3_llmae.experts.llm.errors import LLMEndpointError

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
    parser.add_argument("-v", "--verbose", action="store_true", help="log at DEBUG level")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True)
    for add_parser in PARSER_BUILDERS:
        add_parser(subparsers)
    for subparser in subparsers.choices.values():
        # -v after the subcommand too; SUPPRESS keeps a -v given before it
        subparser.add_argument(
            "-v", "--verbose", action="store_true", default=argparse.SUPPRESS, help="log at DEBUG level"
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Entry point of the ``sb3-llmae`` console script.

    :param argv: arguments (default: ``sys.argv[1:]``)
    :return: exit status
    """
    args = build_parser().parse_args(argv)
    # HuggingFace's "Saving the dataset" bars add nothing to ours (datasets loads only for a command)
    import datasets

    datasets.disable_progress_bars()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(levelname)s %(name)s: %(message)s"
    )
    if not args.verbose:
        # The HTTP client logs every request at INFO: thousands of lines for a generation run.
        for name in QUIET_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
    # No credential reaches the terminal, whoever logs it (the HTTP stack's -v lines show request URLs).
    redactor = Redactor(secrets_of(getattr(args, "base_url", None), os.environ))
    for handler in logging.getLogger().handlers:
        handler.addFilter(redactor)
    try:
        return int(args.func(args))
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except ImportError as error:
        # the commands import their dependencies when they run: a missing imitation is named here, and
        # a missing optional extra (Ray) by the message that names it
        message = IMITATION_MISSING if getattr(error, "name", None) == "imitation" else str(error)
        print(f"error: {message}", file=sys.stderr)
        return 2
    except (ValueError, OSError, NotImplementedError, LLMEndpointError) as error:
        print(redactor.redact(f"error: {error}"), file=sys.stderr)
        return 2
    finally:
        for handler in logging.getLogger().handlers:
            handler.removeFilter(redactor)
