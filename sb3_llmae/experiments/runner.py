"""Comparing methods over seeds: every (method, seed) run in its own folder, run by local worker
processes or as Ray tasks, with one live progress line per run. This module plans the runs, checks them,
and owns the local backend; the Ray backend is :mod:`sb3_llmae.experiments.ray_backend`, imported only
when a comparison uses it."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import queue
import signal
import threading
from collections.abc import Iterable, Iterator, Sequence
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Literal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sb3_llmae.experiments.aggregate import MIN_RUNS
from sb3_llmae.experiments.methods import MethodSpec
from sb3_llmae.experiments.run_folder import is_finished, other_run_differences
from sb3_llmae.experiments.specs import BACKENDS, CompareSettings, RunOutcome, RunSpec
from sb3_llmae.experiments.training_run import train_run
from sb3_llmae.run_layout import SOURCES_DIR

logger = logging.getLogger(__name__)

Backend = Literal["local", "ray"]


def plan_runs(
    methods: Sequence[MethodSpec], seeds: Iterable[int], settings: CompareSettings, out_dir: str | Path
) -> list[RunSpec]:
    """
    :param methods: the methods
    :param seeds: the seeds, each run for every method
    :param settings: what the runs share
    :param out_dir: the comparison's folder; runs go to ``<out_dir>/<method>/seed<seed>``
    :return: the runs, seed by seed (so that partial results cover every method), their paths absolute
        (resolved here, not in the working directory of a worker on another machine)
    :raises ValueError: for no seed, repeated seeds, a method that needs demonstrations it lacks, or a
        budget (``settings.steps``) that the critic warm-up of a method takes whole
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("No seed given: pass --seeds, e.g. --seeds 0 1 2.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"Seeds repeated: {seeds}.")
    lacking = [
        method.name for method in methods if method.needs_demos and not (method.demos or settings.demos)
    ]
    if lacking:
        raise ValueError(
            f"Methods {', '.join(lacking)} clone demonstrations: pass --demos DIR "
            "(from `sb3-llmae generate`), or give each a 'demos' entry in the methods file."
        )
    out_dir = Path(out_dir).resolve()
    if settings.demos is not None:
        settings = dataclasses.replace(settings, demos=str(Path(settings.demos).resolve()))
    methods = [
        method
        if method.demos is None
        else dataclasses.replace(method, demos=str(Path(method.demos).resolve()))
        for method in methods
    ]
    runs = [
        RunSpec(method, seed, settings, out_dir / method.name / f"seed{seed}", out_dir / SOURCES_DIR)
        for seed in seeds
        for method in methods
    ]
    _check_budget(runs)
    return runs


def _first_of_each_method(runs: Sequence[RunSpec]) -> list[RunSpec]:
    firsts: dict[str, RunSpec] = {}
    for spec in runs:
        firsts.setdefault(spec.method.name, spec)
    return list(firsts.values())


def _check_budget(runs: Sequence[RunSpec]) -> None:
    """:raises ValueError: if a method's critic warm-up takes its whole budget (no PPO update at all)"""
    for spec in _first_of_each_method(runs):
        warmup, steps = spec.critic_warmup_steps, spec.settings.steps
        if warmup and steps <= warmup:
            raise ValueError(
                f"--steps {steps:,} leaves {spec.method.name!r} no PPO update: its critic warm-up takes "
                f"{warmup:,} env steps, and the budget counts them (as rl-zoo3's n_timesteps does), so its "
                f"runs would be BC and warm-up only. Pass --steps well above {warmup:,} (e.g. "
                f"{warmup + 4 * spec.settings.evaluation.freq:,}: four evaluations after the warm-up), "
                "or give the method a shorter critic_warmup_steps in a --methods-file."
            )


def plan_warnings(runs: Sequence[RunSpec]) -> list[str]:
    """
    :param runs: the runs of a comparison (:func:`plan_runs`)
    :return: what makes it a weak comparison, one line each: fewer than ``MIN_RUNS`` seeds, or a
        method whose critic warm-up takes half its budget or more
    """
    lines = []
    seeds = sorted({spec.seed for spec in runs})
    if len(seeds) < MIN_RUNS:
        lines.append(
            f"{len(seeds)} seed{'s' if len(seeds) > 1 else ''} per method: with fewer than {MIN_RUNS} runs "
            "the bootstrap CIs collapse (e.g. 1.000 [1.000, 1.000]) and P(X > Y) says little; pass "
            f"--seeds with {MIN_RUNS} or more (the reference used 10)."
        )
    for spec in _first_of_each_method(runs):
        warmup, steps = spec.critic_warmup_steps, spec.settings.steps
        if warmup and 2 * warmup >= steps:
            lines.append(
                f"{spec.method.name!r} spends {warmup:,} of its {steps:,} env steps in the critic warm-up "
                f"(actor frozen), leaving {steps - warmup:,} for PPO updates; raise --steps for a comparison "
                "of fine-tuning."
            )
    return lines


def check_run_folders(runs: Sequence[RunSpec]) -> None:
    """
    :param runs: the runs of a comparison
    :raises ValueError: naming, for every run whose folder holds a run of other settings, the settings
        that differ and what to do; nothing is written
    """
    conflicts = [(spec, other_run_differences(spec)) for spec in runs]
    conflicts = [(spec, differences) for spec, differences in conflicts if differences]
    if not conflicts:
        return
    lines = [f"  {spec.key} ({spec.run_dir}): {'; '.join(differences)}" for spec, differences in conflicts]
    raise ValueError(
        f"{len(conflicts)} run folder{'s' if len(conflicts) > 1 else ''} hold runs of other settings "
        "(stored -> asked for now):\n"
        + "\n".join(lines)
        + "\nNothing was changed. Use another --out for these settings, or delete those run folders to "
        "train them over with the new ones."
    )


def compare(
    runs: Sequence[RunSpec],
    *,
    backend: Backend = "local",
    workers: int = 1,
    ray_address: str | None = None,
    progress_bar: bool = True,
) -> list[RunOutcome]:
    """
    Train every run that has not finished before; a run that fails is reported, the others go on.

    :param runs: the runs (:func:`plan_runs`)
    :param backend: ``"local"``: worker processes on this machine, one torch thread each; ``"ray"``:
        Ray tasks (one CPU each) on the cluster at ``ray_address``
    :param workers: runs trained at once by the local backend
    :param ray_address: the Ray cluster (``"auto"``: the one this machine belongs to); ``None``: a Ray
        instance started on this machine for the comparison
    :param progress_bar: show one live line per run (steps, last greedy success)
    :return: the outcome of each run, in the order of ``runs``
    :raises ImportError: for ``backend="ray"`` without Ray, naming the extra
    :raises ValueError: before any run, if a run folder holds a run of other settings (naming them), or
        if a Ray cluster's nodes cannot share the comparison's folder (naming the nodes)
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    if workers <= 0:
        raise ValueError(f"workers must be positive, got {workers}.")
    if backend == "ray":
        from sb3_llmae.experiments.ray_backend import require_ray

        require_ray()
    check_run_folders(runs)
    for line in plan_warnings(runs):
        logger.warning(line)
    with RunProgress(runs, enabled=progress_bar) as progress:
        if backend == "ray":
            from sb3_llmae.experiments.ray_backend import compare_ray

            return compare_ray(runs, ray_address, progress)
        return _compare_local(runs, workers, progress)


class RunProgress:
    """
    One live line per run: its steps out of the total and the greedy success of its last evaluation.

    :param runs: the runs shown
    :param enabled: show the lines (otherwise only log each run's end)
    """

    def __init__(self, runs: Sequence[RunSpec], enabled: bool = True) -> None:
        self.enabled = enabled
        self.progress = Progress(
            TextColumn("{task.description:<28}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("steps  success {task.fields[success]}  {task.fields[status]}"),
            TimeElapsedColumn(),
            disable=not enabled,
        )
        self.tasks: dict[str, TaskID] = {
            run.key: self.progress.add_task(run.key, total=run.settings.steps, success="-", status="")
            for run in runs
        }

    def __enter__(self) -> RunProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.progress.stop()

    def update(self, key: str, steps: int, success: float | None) -> None:
        """Show a run's steps so far and its last greedy success rate."""
        fields: dict[str, Any] = {} if success is None else {"success": f"{success:.2f}"}
        self._set_steps(key, steps)
        self.progress.update(self.tasks[key], status="running", **fields)

    def _set_steps(self, key: str, steps: int) -> None:
        # PPO trains in whole rollouts, so a run may end a little past its budget
        total = self.progress.tasks[self.tasks[key]].total or steps
        self.progress.update(self.tasks[key], completed=steps, total=max(total, steps))

    def finish(self, outcome: RunOutcome) -> None:
        """Show how a run ended."""
        final = outcome.result.get("final_success_greedy")
        fields: dict[str, Any] = {} if final is None else {"success": f"{final:.2f}"}
        completed = outcome.result.get("env_steps", self.progress.tasks[self.tasks[outcome.key]].completed)
        self._set_steps(outcome.key, int(completed))
        self.progress.update(self.tasks[outcome.key], status=outcome.status, **fields)
        if outcome.status == "failed":
            logger.error("%s failed: %s (traceback in %s)", outcome.key, outcome.error, outcome.run_dir)
        else:
            logger.debug("%s %s", outcome.key, outcome.status)


def _run_in_child(spec: RunSpec, messages: Any) -> None:
    """A worker process: train one run, send its progress and outcome to the parent."""
    # Ctrl-C reaches the whole process group: the parent stops the workers (SIGTERM), so that they end
    # without a KeyboardInterrupt traceback each.
    signal.signal(signal.SIGINT, signal.SIG_IGN)

    def report(steps: int, success: float | None) -> None:
        messages.put(("progress", spec.key, steps, success))

    messages.put(("done", spec.key, train_run(spec, report)))


def _compare_local(runs: Sequence[RunSpec], workers: int, progress: RunProgress) -> list[RunOutcome]:
    outcomes: dict[str, RunOutcome] = {}
    pending: list[RunSpec] = []
    for spec in runs:
        if is_finished(spec):  # no process for a run that only needs to be read back
            outcomes[spec.key] = train_run(spec)
            progress.finish(outcomes[spec.key])
        else:
            pending.append(spec)
    # spawn, not fork: a forked child would inherit the parent's torch threads and open files
    context = multiprocessing.get_context("spawn")
    with _sigterm_as_interrupt():
        return _run_workers(runs, pending, outcomes, workers, progress, context)


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """
    While the block runs, SIGTERM ends it as Ctrl-C does: the workers are stopped and waited for, rather
    than left running (with the resource tracker) when the parent dies at once.
    """

    def interrupt(signum: int, frame: object) -> None:
        logger.warning("Stopping the comparison (SIGTERM): its runs resume when it is run again.")
        raise KeyboardInterrupt

    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _run_workers(
    runs: Sequence[RunSpec],
    pending: list[RunSpec],
    outcomes: dict[str, RunOutcome],
    workers: int,
    progress: RunProgress,
    context: Any,
) -> list[RunOutcome]:
    """Train the ``pending`` runs in at most ``workers`` processes; :return: every run's outcome"""
    messages = context.Queue()
    running: dict[str, tuple[RunSpec, SpawnProcess]] = {}
    try:
        while pending or running:
            while pending and len(running) < workers:
                spec = pending.pop(0)
                process = context.Process(target=_run_in_child, args=(spec, messages), name=spec.key)
                process.start()
                running[spec.key] = (spec, process)
            try:
                message = messages.get(timeout=0.5)
            except queue.Empty:
                message = None
            if message is not None and message[0] == "progress":
                progress.update(message[1], message[2], message[3])
            elif message is not None:
                outcome: RunOutcome = message[2]
                outcomes[outcome.key] = outcome
                progress.finish(outcome)
                running.pop(outcome.key)[1].join()
            for key, (spec, process) in list(running.items()):
                if not process.is_alive() and messages.empty() and key not in outcomes:
                    # died without reporting (killed, out of memory, a crash below Python)
                    outcomes[key] = RunOutcome(
                        key,
                        "failed",
                        spec.run_dir,
                        error=f"the worker process died (exit code {process.exitcode})",
                    )
                    progress.finish(outcomes[key])
                    running.pop(key)
    finally:
        for _, process in running.values():
            process.terminate()
            process.join()
    return [outcomes[spec.key] for spec in runs]
