"""Comparing methods over seeds: every (method, seed) run in its own folder, run by local worker
processes or as Ray tasks, with one live progress line per run."""

from __future__ import annotations

import logging
import multiprocessing
import queue
from collections.abc import Iterable, Sequence
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Literal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sb3_llmae.experiments.methods import MethodSpec
from sb3_llmae.experiments.run_folder import is_finished
from sb3_llmae.experiments.specs import CompareSettings, RunOutcome, RunSpec
from sb3_llmae.experiments.training_run import train_run
from sb3_llmae.run_layout import SOURCES_DIR

logger = logging.getLogger(__name__)

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'sb3-llmae[ray]'"


def plan_runs(
    methods: Sequence[MethodSpec], seeds: Iterable[int], settings: CompareSettings, out_dir: str | Path
) -> list[RunSpec]:
    """
    :param methods: the methods
    :param seeds: the seeds, each run for every method
    :param settings: what the runs share
    :param out_dir: the comparison's folder; runs go to ``<out_dir>/<method>/seed<seed>``
    :return: the runs, seed by seed (so that partial results cover every method)
    :raises ValueError: for no seed, repeated seeds, or a method that needs demonstrations it lacks
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
    out_dir = Path(out_dir)
    return [
        RunSpec(method, seed, settings, out_dir / method.name / f"seed{seed}", out_dir / SOURCES_DIR)
        for seed in seeds
        for method in methods
    ]


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
    """
    if backend not in BACKENDS:
        raise ValueError(f"Unknown backend {backend!r}: choose one of {', '.join(BACKENDS)}.")
    if workers <= 0:
        raise ValueError(f"workers must be positive, got {workers}.")
    with RunProgress(runs, enabled=progress_bar) as progress:
        if backend == "ray":
            return _compare_ray(runs, ray_address, progress)
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


def _compare_ray(runs: Sequence[RunSpec], ray_address: str | None, progress: RunProgress) -> list[RunOutcome]:
    try:
        import ray
    except ImportError as error:
        raise ImportError(f"--backend ray needs Ray: {RAY_INSTALL_HINT}") from error
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    try:
        train_remote = ray.remote(num_cpus=1)(train_run)
        pending = {train_remote.remote(spec): spec for spec in runs}
        outcomes: dict[str, RunOutcome] = {}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            for ref in done:
                spec = pending.pop(ref)
                try:
                    outcome = ray.get(ref)
                except Exception as error:  # the task's worker died: report it, keep the others
                    outcome = RunOutcome(
                        spec.key, "failed", spec.run_dir, error=f"{type(error).__name__}: {error}"
                    )
                outcomes[spec.key] = outcome
                progress.finish(outcome)
        return [outcomes[spec.key] for spec in runs]
    finally:
        if started_here:
            ray.shutdown()
