"""The Ray backend of a comparison: its runs as Ray tasks (one CPU each) with their progress sent back
through a Ray queue, and the probe checking, before any run, that every node shares the comparison's
folder with the driver. Ray is an optional extra: :func:`require_ray` names it when missing."""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sb3_llmae.experiments.run_folder import is_finished
from sb3_llmae.experiments.specs import RunOutcome, RunSpec
from sb3_llmae.experiments.training_run import train_run

if TYPE_CHECKING:
    from sb3_llmae.experiments.runner import RunProgress

logger = logging.getLogger(__name__)

RAY_INSTALL_HINT = "pip install 'sb3-llmae[ray]'"
# Seconds the Ray workers have to answer the shared-storage probe (their first start imports torch).
PROBE_TIMEOUT_S = 600.0


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


def compare_ray(runs: Sequence[RunSpec], ray_address: str | None, progress: RunProgress) -> list[RunOutcome]:
    """
    Train every run not finished before as a Ray task, after checking that the cluster shares the
    comparison's folder.

    :param runs: the runs (:func:`~sb3_llmae.experiments.runner.plan_runs`)
    :param ray_address: the Ray cluster; ``None``: a Ray instance started on this machine for the comparison
    :param progress: the live lines the runs' progress and outcomes go to
    :return: the outcome of each run, in the order of ``runs``
    """
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
