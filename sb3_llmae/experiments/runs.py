"""Reading evaluation logs back: one folder per run, one ``.npz`` per evaluation.

Two layouts are read, both ``<root>/<method>/<run>/eval_logs/<prefix>step<N>.npz``: the compare
runner's (``eval_step<N>.npz``, the run's seed in ``config.json``) and the reference system's
(``<Agent>_step<N>.npz``, its seed in ``.hydra/config.yaml``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType

import numpy as np

from sb3_llmae.run_layout import (
    CONFIG_FILE,
    EVAL_LOGS_DIR,
    HEATMAP_PREFIX,
    HEATMAPS_DIR,
    HYDRA_CONFIG_FILE,
    METRICS,
    EvaluationArrays,
    heatmap_step,
)

_HYDRA_SEED = re.compile(r"^seed:\s*(-?\d+)\s*$", re.MULTILINE)


@dataclass(frozen=True)
class RunCurves:
    """
    The evaluation curves of one run (one method, one seed).

    :param method: the method (the name of the run folder's parent)
    :param run: the run folder's name
    :param seed: the run's seed, where its config gives it
    :param path: the run folder
    :param steps: the evaluated env steps, increasing
    :param scores: per metric (``METRICS``), the score at each of ``steps``; only the metrics the
        files hold
    """

    method: str
    run: str
    seed: int | None
    path: Path
    steps: np.ndarray
    scores: Mapping[str, np.ndarray] = field(default_factory=dict)

    def heatmap_files(self) -> list[tuple[int, Path]]:
        """:return: the run's visitation heatmaps (``heatmaps/visits_step<N>.npy``), (step, path) by step"""
        found = []
        for path in (self.path / HEATMAPS_DIR).glob(f"{HEATMAP_PREFIX}*.npy"):
            step = heatmap_step(path.name)
            if step is not None:
                found.append((step, path))
        return sorted(found)


def evaluation_score(values: np.ndarray, mask: np.ndarray | None = None) -> float:
    """
    The reference's score of one evaluation: the mean over each eval env's valid episodes, then the
    mean over the envs that have any.

    :param values: per-episode values, (n_eval_envs, episodes per env) or (n_episodes,)
    :param mask: which entries are real episodes (the rest is padding); ``None``: all
    :return: the score
    :raises ValueError: if the shapes differ or no entry is valid
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    valid = np.ones(values.shape, dtype=bool) if mask is None else np.asarray(mask, dtype=bool)
    if valid.ndim == 1:
        valid = valid[:, None]
    if valid.shape != values.shape:
        raise ValueError(f"An evaluation's mask has shape {valid.shape} but its values have {values.shape}.")
    counts = valid.sum(axis=1)
    if not counts.any():
        raise ValueError("An evaluation holds no valid episode (its mask is all False).")
    sums = np.where(valid, values, 0.0).sum(axis=1)
    return float(np.mean(sums[counts > 0] / counts[counts > 0]))


def read_evaluation(path: Path) -> tuple[int, dict[str, float]]:
    """
    :param path: one evaluation ``.npz``
    :return: its env step (its ``step`` entry, else the number in its name) and its score per metric
    :raises ValueError: if it holds neither a step nor a metric
    """
    evaluation = EvaluationArrays.from_npz(path)
    assert evaluation.step is not None, "from_npz tells the step of every file"
    scores = {
        metric: evaluation_score(values, mask)
        for metric, (values, mask) in evaluation.metric_values().items()
    }
    return evaluation.step, scores


def read_seed(run_dir: Path) -> int | None:
    """
    :param run_dir: a run folder
    :return: the seed in its ``config.json`` (compare runner) or ``.hydra/config.yaml`` (reference), if any
    """
    config_path = run_dir / CONFIG_FILE
    if config_path.is_file():
        seed = json.loads(config_path.read_text()).get("seed")
        return None if seed is None else int(seed)
    hydra_path = run_dir / HYDRA_CONFIG_FILE
    if hydra_path.is_file():
        match = _HYDRA_SEED.search(hydra_path.read_text())
        return None if match is None else int(match.group(1))
    return None


def load_run(run_dir: str | Path, method: str | None = None) -> RunCurves:
    """
    Read one run's evaluation files.

    :param run_dir: the run folder (it holds ``eval_logs/``)
    :param method: the method's name; ``None``: the name of the run folder's parent
    :return: the run's curves
    :raises FileNotFoundError: if it holds no evaluation file
    """
    run_dir = Path(run_dir)
    files = sorted((run_dir / EVAL_LOGS_DIR).glob("*.npz"))
    if not files:
        raise FileNotFoundError(f"No evaluation files (*.npz) in {run_dir / EVAL_LOGS_DIR}.")
    by_step = dict(read_evaluation(path) for path in files)
    steps = np.array(sorted(by_step), dtype=np.int64)
    # A metric counts only where every evaluation has it.
    metrics = [metric for metric in METRICS if all(metric in by_step[int(step)] for step in steps)]
    scores = {metric: np.array([by_step[int(step)][metric] for step in steps]) for metric in metrics}
    return RunCurves(
        method=method or run_dir.parent.name,
        run=run_dir.name,
        seed=read_seed(run_dir),
        path=run_dir,
        steps=steps,
        scores=MappingProxyType(scores),
    )


def discover_runs(root: str | Path) -> dict[str, list[RunCurves]]:
    """
    Find every run under ``root``: each folder holding an ``eval_logs/`` folder with ``.npz`` files is a
    run of the method its parent folder names (by its path under ``root`` where two folders of that name
    hold runs, e.g. rl-zoo3's ``scratch/ppo`` and ``llmae/ppo``).

    :param root: a compare output folder, a reference ``multirun/<date>`` folder, or any folder above
    :return: per method (in name order), its runs (in run-name order)
    :raises FileNotFoundError: if ``root`` is missing or holds no run
    """
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"No folder {root}: pass the output folder of `sb3-llmae compare`.")
    run_dirs = sorted(
        {path.parent.parent for path in root.rglob(f"{EVAL_LOGS_DIR}/*.npz")},
        key=lambda path: (path.parent.name, _natural_key(path.name)),
    )
    if not run_dirs:
        raise FileNotFoundError(
            f"No runs under {root}: expected <method>/<run>/{EVAL_LOGS_DIR}/*.npz (as `sb3-llmae compare` "
            "writes them)."
        )
    # A method is named after its folder; folders of one name in two places (rl-zoo3's <log>/ppo/<env>_1
    # under two log folders) are named by their path under root instead.
    names: dict[str, set[Path]] = {run_dir.parent.name: set() for run_dir in run_dirs}
    for run_dir in run_dirs:
        names[run_dir.parent.name].add(run_dir.parent)
    runs: dict[str, list[RunCurves]] = {}
    for run_dir in run_dirs:
        method = run_dir.parent.name
        if len(names[method]) > 1:
            method = run_dir.parent.relative_to(root).as_posix()
        run = load_run(run_dir, method)
        runs.setdefault(run.method, []).append(run)
    return dict(sorted(runs.items()))


def _natural_key(name: str) -> tuple[int, int | str]:
    """Order ``2`` before ``10`` and ``seed_2`` before ``seed_10``."""
    match = re.search(r"(\d+)$", name)
    return (0, int(match.group(1))) if match else (1, name)
