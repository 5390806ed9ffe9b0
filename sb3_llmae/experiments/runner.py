"""Comparing methods over seeds: every (method, seed) run in its own folder, run by local worker
processes or as Ray tasks, with one live progress line per run."""

from __future__ import annotations

import dataclasses
import logging
import multiprocessing
import os
import queue
import socket
import uuid
from collections.abc import Iterable, Sequence
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Literal

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from sb3_llmae.experiments.aggregate import MIN_RUNS
from sb3_llmae.experiments.methods import MethodSpec
from sb3_llmae.experiments.run_folder import is_finished, other_run_differences
from sb3_llmae.experiments.specs import CompareSettings, RunOutcome, RunSpec
from sb3_llmae.experiments.training_run import train_run
from sb3_llmae.run_layout import SOURCES_DIR

logger = logging.getLogger(__name__)

Backend = Literal["local", "ray"]
BACKENDS: tuple[str, ...] = ("local", "ray")
RAY_INSTALL_HINT = "pip install 'sb3-llmae[ray]'"
# Seconds the Ray workers have to answer the shared-storage probe (their first start imports torch).
PROBE_TIMEOUT_S = 600.0


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


def require_ray() -> Any:
    """
    :return: the ``ray`` module
    :raises ImportError: one line naming the extra to install, if Ray is missing
    """
    try:
        import ray
    except ImportError as error:
        raise ImportError(f"--backend ray needs Ray, an optional extra: {RAY_INSTALL_HINT}") from error
    return ray


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
        require_ray()
    check_run_folders(runs)
    for line in plan_warnings(runs):
        logger.warning(line)
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


def _train_on_ray(spec: RunSpec, messages: Any) -> RunOutcome:
    """A Ray task: train one run, sending its progress to the driver through ``messages`` (a Ray queue)."""

    def report(steps: int, success: float | None) -> None:
        try:
            messages.put_nowait((spec.key, steps, success))
        except Exception as error:  # progress lines are not worth a run: train on without them
            logger.debug("%s: progress not sent (%s)", spec.key, error)

    return train_run(spec, report)


def _compare_dir(runs: Sequence[RunSpec]) -> Path:
    """:return: the comparison's folder (``plan_runs``' ``out_dir``), where its runs and sources live"""
    return runs[0].sources_dir.parent


def _compare_ray(runs: Sequence[RunSpec], ray_address: str | None, progress: RunProgress) -> list[RunOutcome]:
    ray = require_ray()
    from ray.util.queue import Empty, Queue

    outcomes: dict[str, RunOutcome] = {}
    pending_specs = []
    for spec in runs:
        if is_finished(spec):  # read back here: no task for a run that only needs to be read
            outcomes[spec.key] = train_run(spec)
            progress.finish(outcomes[spec.key])
        else:
            pending_specs.append(spec)
    if not pending_specs:
        return [outcomes[spec.key] for spec in runs]
    started_here = not ray.is_initialized()
    if started_here:
        ray.init(address=ray_address, include_dashboard=False, log_to_driver=False)
    try:
        check_shared_storage(ray, _compare_dir(runs))
        # no CPU of its own, so that it never keeps a run from a worker
        messages = Queue(actor_options={"num_cpus": 0})
        train_remote = ray.remote(num_cpus=1)(_train_on_ray)
        pending = {train_remote.remote(spec, messages): spec for spec in pending_specs}
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            try:
                for key, steps, success in messages.get_nowait_batch(messages.qsize()):
                    if key not in outcomes:
                        progress.update(key, steps, success)
            except Empty:
                pass
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


PROBE_PREFIX = ".storage-probe-"


def write_probe(directory: Path) -> str:
    """
    The driver's half of the shared-storage probe: make ``directory`` and write a probe file in it.

    :param directory: the comparison's folder
    :return: the probe's token (its file is ``directory / (PROBE_PREFIX + token)``, holding the token)
    """
    directory.mkdir(parents=True, exist_ok=True)
    token = uuid.uuid4().hex
    (directory / f"{PROBE_PREFIX}{token}").write_text(token)
    return token


def probe_storage(directory: str, token: str, node: str) -> dict[str, Any]:
    """
    A worker's half of the shared-storage probe (run as a Ray task on each node): read the driver's probe
    file in ``directory``, write a reply beside it and read that back. Nothing is created elsewhere: on a
    node without the shared folder, ``directory`` does not exist and the probe says so.

    :param directory: the comparison's folder, an absolute path
    :param token: the probe's token (:func:`write_probe`)
    :param node: a name of the node, for the reply file
    :return: ``host``, ``node``, ``cwd``, ``directory``, and ``reply`` (the reply file) or ``error``
    """
    answer: dict[str, Any] = {
        "host": socket.gethostname(),
        "node": node,
        "cwd": os.getcwd(),
        "directory": directory,
    }
    probe = Path(directory) / f"{PROBE_PREFIX}{token}"
    try:
        seen = probe.read_text()
        if seen != token:
            answer["error"] = f"{probe} holds {seen!r}, not the driver's probe"
            return answer
        reply = probe.with_name(f"{probe.name}.{node}")
        reply.write_text(token)
        reply.read_text()
        answer["reply"] = str(reply)
    except OSError as error:
        answer["error"] = f"{type(error).__name__}: {error}"
    return answer


def storage_problems(answers: Sequence[dict[str, Any]]) -> list[str]:
    """
    :param answers: the workers' :func:`probe_storage` answers, read on the driver
    :return: one line per node that cannot share the folder with the driver (empty: all can)
    """
    problems = []
    for answer in answers:
        where = f"node {answer['node']} (host {answer['host']})"
        if "error" in answer:
            problems.append(
                f"{where} cannot read the driver's probe in {answer['directory']}: {answer['error']}"
            )
        elif not Path(answer["reply"]).is_file():
            problems.append(f"{where} wrote {answer['reply']}, which the driver cannot see")
    return problems


def shared_storage_error(directory: Path, problems: Sequence[str]) -> ValueError:
    """:return: the error of a comparison folder that some nodes cannot share, naming them and the fix"""
    return ValueError(
        f"--backend ray: the cluster's workers cannot share {directory} with this machine: "
        + "; ".join(problems)
        + ". Every run writes its folder there and this machine reads it back (progress, resume, "
        "`sb3-llmae report`), so --out must be on storage every node mounts at the same path (NFS, a "
        "shared volume): pass such a folder as --out."
    )


def check_shared_storage(ray: Any, directory: Path, timeout: float = PROBE_TIMEOUT_S) -> list[dict[str, Any]]:
    """
    Before any run: check that a worker on every node of the Ray cluster can read and write the
    comparison's folder, the same files the driver sees (runs write there; progress, resume and
    ``report`` read there).

    :param ray: the ``ray`` module, initialised
    :param directory: the comparison's folder, absolute
    :param timeout: seconds the workers have to answer
    :return: every node's answer (:func:`probe_storage`)
    :raises ValueError: naming each node that cannot, and the shared-storage requirement
    """
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    token = write_probe(directory)
    try:
        nodes = [
            node for node in ray.nodes() if node.get("Alive") and node.get("Resources", {}).get("CPU", 0) > 0
        ]
        probe = ray.remote(num_cpus=0)(probe_storage)
        refs = {
            probe.options(
                scheduling_strategy=NodeAffinitySchedulingStrategy(node["NodeID"], soft=False)
            ).remote(str(directory), token, node["NodeID"][:12]): node
            for node in nodes
        }
        ready, late = ray.wait(list(refs), num_returns=len(refs), timeout=timeout)
        answers = [ray.get(ref) for ref in ready]
        problems = storage_problems(answers)
        problems += [
            f"node {refs[ref]['NodeID'][:12]} ({refs[ref].get('NodeManagerAddress')}): "
            f"no answer within {timeout:.0f} s"
            for ref in late
        ]
        for answer in answers:
            logger.debug("storage probe: %s", answer)
    finally:
        for path in directory.glob(f"{PROBE_PREFIX}{token}*"):
            path.unlink(missing_ok=True)
    if problems:
        raise shared_storage_error(directory, problems)
    return answers
