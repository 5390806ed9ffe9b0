"""
``write_report``'s time on the reference runs (3 methods x 10 seeds x 49 evaluations): the NumPy
stratified bootstrap of :mod:`sb3_llmae.experiments.aggregate` against rliable's own (one Python call
per resample, the path before), in one process, and whether both give the same figures.

Both paths draw the same resamples (rliable's, seeded the same way), so the two reports' tables must be
identical; the script says so. Times are wall and CPU seconds of the process (``time.process_time``, which
other jobs on a shared machine disturb far less: on a quiet machine the wall time is close to it).

    python benchmarks/report_speed.py [RUNS_DIR] [--reps 50000]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

from sb3_llmae.experiments import aggregate, report
from sb3_llmae.experiments.report import write_report

REFERENCE_RUNS = (
    Path(__file__).resolve().parents[1].parent / "shared" / "reference-runs" / "multirun" / "2025-08-11"
)


def timed_report(runs_dir: Path, out_dir: Path, reps: int, rliable: bool) -> tuple[float, float, str]:
    """:return: wall seconds, CPU seconds and the ``summary.csv`` of one ``write_report``"""
    with ExitStack() as patches:
        if rliable:
            patches.enter_context(
                mock.patch.object(aggregate, "bootstrap_iqm", aggregate.rliable_bootstrap_iqm)
            )
            patches.enter_context(
                mock.patch.object(
                    report, "probability_of_improvement", aggregate.rliable_probability_of_improvement
                )
            )
        wall, cpu = time.perf_counter(), time.process_time()
        result = write_report(runs_dir, out_dir, reps=reps)
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return wall, cpu, result.summary_path.read_text()


def timed_cli(runs_dir: Path, out_dir: Path, reps: int) -> tuple[float, float]:
    """:return: wall seconds and CPU seconds (user + sys) of ``sb3-llmae report`` in a fresh process"""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    wall = time.perf_counter()
    command = [sys.executable, "-m", "sb3_llmae", "report", str(runs_dir), "--out", str(out_dir)]
    subprocess.run([*command, "--reps", str(reps)], check=True, capture_output=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return time.perf_counter() - wall, cpu


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="?", type=Path, default=REFERENCE_RUNS, help="a folder of runs")
    parser.add_argument("--reps", type=int, default=aggregate.REPS, help="bootstrap resamples")
    args = parser.parse_args(argv)
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    with tempfile.TemporaryDirectory() as out:
        new_wall, new_cpu, new_summary = timed_report(
            args.runs, Path(out) / "numpy", args.reps, rliable=False
        )
        print(f"NumPy bootstrap:   {new_wall:6.1f} s wall, {new_cpu:6.1f} s CPU", flush=True)
        old_wall, old_cpu, old_summary = timed_report(
            args.runs, Path(out) / "rliable", args.reps, rliable=True
        )
        print(f"rliable bootstrap: {old_wall:6.1f} s wall, {old_cpu:6.1f} s CPU", flush=True)
        cli_wall, cli_cpu = timed_cli(args.runs, Path(out) / "cli", args.reps)
        print(f"`sb3-llmae report` (NumPy, imports included): {cli_wall:.1f} s wall, {cli_cpu:.1f} s CPU")
    print(
        f"speed-up: {old_wall / new_wall:.1f}x (wall), {old_cpu / new_cpu:.1f}x (CPU); "
        f"summary.csv {'identical' if new_summary == old_summary else 'DIFFERS'}; "
        f"load average after: {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
