"""``sb3-llmae report``: rliable aggregation of a comparison's runs into report.md, summary.csv and plots."""

from __future__ import annotations

import argparse
import logging
import time

from sb3_llmae.cli.config_flags import DefaultsHelpFormatter
from sb3_llmae.experiments.aggregate import BOOTSTRAP_SEED, REPS, THRESHOLD
from sb3_llmae.experiments.report import write_report


def cmd_report(args: argparse.Namespace) -> int:
    """Write the report of the runs under ``args.runs`` and print where it is."""
    if args.reps <= 0:
        raise ValueError(f"--reps must be positive, got {args.reps}.")
    # rliable logs one INFO line per bootstrap through absl
    logging.getLogger("absl").setLevel(logging.WARNING)
    start = time.perf_counter()
    report = write_report(args.runs, args.out, threshold=args.threshold, reps=args.reps, seed=args.seed)
    lines = [f"{method}: {len(by_metric)} metrics" for method, by_metric in report.summaries.items()]
    lines += [
        f"report: {report.report_path}",
        f"summary: {report.summary_path}",
        *(f"plot: {path}" for path in report.plots),
        f"time: {time.perf_counter() - start:.1f} s",
    ]
    print("\n".join(lines))
    return 0


def add_report_parser(subparsers: argparse._SubParsersAction) -> None:
    """:param subparsers: the ``sb3-llmae`` subcommands, to which ``report`` is added"""
    parser = subparsers.add_parser(
        "report",
        help="IQM, bootstrap CIs, time to threshold and plots of a comparison's runs",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument(
        "runs",
        help="a `sb3-llmae compare` output folder, or any folder of <method>/<run>/eval_logs/*.npz "
        "(the reference system's multirun/<date> too)",
    )
    parser.add_argument("--out", default=None, help="where to write (None: the runs folder)")
    parser.add_argument("--threshold", type=float, default=THRESHOLD, help="time-to-threshold level")
    parser.add_argument("--reps", type=int, default=REPS, help="stratified-bootstrap resamples")
    parser.add_argument("--seed", type=int, default=BOOTSTRAP_SEED, help="seed of the bootstrap")
    parser.set_defaults(func=cmd_report)
