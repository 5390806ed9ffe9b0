"""The layout of a run folder: its file and folder names, and the schema of an evaluation ``.npz``.

The training callbacks write these files and the experiments layer (compare runner, report) reads
them, so the names live here, beneath both: training must not import experiments, and this module
imports nothing of the plugin.

A run folder holds::

    config.json          the resolved settings (compare runner)
    eval_logs/           eval_step<N>.npz (one evaluation each), evaluations.csv, thresholds.json
    heatmaps/            visits_step<N>.npy and .png
    tensorboard/         TensorBoard runs
    checkpoints/         model_<N>_steps.zip, resume points
    model.zip            the final model
    result.json          once finished; error.txt instead when the run failed

The reference system writes ``eval_logs/<Agent>_step<N>.npz`` with the same reference keys (several
eval envs per file, padded with masks) and its seed in ``.hydra/config.yaml``; both are read.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from types import MappingProxyType
from typing import Protocol

import numpy as np

EVAL_LOGS_DIR = "eval_logs"
EVALUATIONS_CSV = "evaluations.csv"
THRESHOLDS_FILE = "thresholds.json"
HEATMAPS_DIR = "heatmaps"
HEATMAP_PREFIX = "visits_step"
CONFIG_FILE = "config.json"
RESULT_FILE = "result.json"
ERROR_FILE = "error.txt"
MODEL_FILE = "model.zip"
CHECKPOINTS_DIR = "checkpoints"
CHECKPOINT_PREFIX = "model"
TENSORBOARD_DIR = "tensorboard"
# Transfer source models, shared by the runs of a comparison (next to the method folders).
SOURCES_DIR = "_sources"
HYDRA_CONFIG_FILE = Path(".hydra") / "config.yaml"
CSV_COLUMNS = (
    "step",
    "success_greedy",
    "success_sampled",
    "return_greedy",
    "return_sampled",
    "length_greedy",
    "length_sampled",
    "eval_seconds",
)

# metric name -> (values key, mask key) in an evaluation file. Sampled actions under the reference's
# names; greedy ones (``predict(deterministic=True)``) only in the plugin's files.
METRIC_KEYS: MappingProxyType[str, tuple[str, str]] = MappingProxyType(
    {
        "return": ("returns", "mask"),
        "success": ("success", "success_mask"),
        "return_greedy": ("returns_greedy", "mask"),
        "success_greedy": ("success_greedy", "success_mask"),
    }
)
METRICS: tuple[str, ...] = tuple(METRIC_KEYS)

_STEP_IN_NAME = re.compile(r"step(\d+)\.npz$")
_CHECKPOINT_NAME = re.compile(rf"^{CHECKPOINT_PREFIX}_(\d+)_steps\.zip$")
_HEATMAP_NAME = re.compile(rf"^{HEATMAP_PREFIX}(\d+)\.npy$")


def eval_file_name(step: int) -> str:
    """
    :param step: env steps at the evaluation
    :return: the name of its ``.npz`` file, ``eval_step{step}.npz``
    """
    return f"eval_step{step}.npz"


def heatmap_stem(step: int) -> str:
    """
    :param step: env steps at the heatmap
    :return: the name of its files without suffix, ``visits_step{step}``
    """
    return f"{HEATMAP_PREFIX}{step}"


def checkpoint_step(name: str) -> int | None:
    """
    :param name: a file name in ``checkpoints/``
    :return: the env step of a resume checkpoint ``model_<N>_steps.zip``, else ``None``
    """
    match = _CHECKPOINT_NAME.match(name)
    return None if match is None else int(match.group(1))


def heatmap_step(name: str) -> int | None:
    """
    :param name: a file name in ``heatmaps/``
    :return: the env step of a heatmap's counts ``visits_step<N>.npy``, else ``None``
    """
    match = _HEATMAP_NAME.match(name)
    return None if match is None else int(match.group(1))


class EpisodeResults(Protocol):
    """What an evaluation hands over per episode (e.g. ``training.evaluation.EvaluationResult``)."""

    @property
    def seeds(self) -> Sequence[int]: ...

    @property
    def returns(self) -> Sequence[float]: ...

    @property
    def successes(self) -> Sequence[float]: ...

    @property
    def lengths(self) -> Sequence[int]: ...


# eq=False: arrays have no single truth value, so fields are compared one by one where needed
@dataclass(frozen=True, eq=False)
class EvaluationArrays:
    """
    One evaluation file. The reference keys (``returns``, ``mask``, ``success``, ``success_mask``,
    ``eval_seeds``, ``step``) hold the *sampled*-action results, as the reference measured, shaped
    (eval envs, episodes per env) with masks marking the real episodes; the plugin writes one eval env
    per seed and one episode each. ``returns_greedy``, ``success_greedy`` (greedy actions, masked by
    ``mask`` / ``success_mask``), ``lengths`` and ``lengths_greedy`` are the plugin's own keys.

    :param returns: sampled-action returns
    :param mask: which entries of ``returns`` (and ``returns_greedy``) are episodes
    :param success: sampled-action successes (0 or 1)
    :param success_mask: which entries of ``success`` (and ``success_greedy``) are episodes
    :param step: env steps at the evaluation; ``None`` where a file has none (then its name tells)
    :param eval_seeds: the seeds of the eval envs
    :param returns_greedy: greedy-action returns
    :param success_greedy: greedy-action successes
    :param lengths: sampled-action episode lengths
    :param lengths_greedy: greedy-action episode lengths
    """

    returns: np.ndarray | None = None
    mask: np.ndarray | None = None
    success: np.ndarray | None = None
    success_mask: np.ndarray | None = None
    step: int | None = None
    eval_seeds: np.ndarray | None = None
    returns_greedy: np.ndarray | None = None
    success_greedy: np.ndarray | None = None
    lengths: np.ndarray | None = None
    lengths_greedy: np.ndarray | None = None

    def metric_values(self) -> dict[str, tuple[np.ndarray, np.ndarray | None]]:
        """:return: per metric the file holds (``METRIC_KEYS``), its values and their mask (``None``: all)"""
        return {
            metric: (values, getattr(self, mask_key))
            for metric, (values_key, mask_key) in METRIC_KEYS.items()
            if (values := getattr(self, values_key)) is not None
        }

    @classmethod
    def from_results(cls, step: int, greedy: EpisodeResults, sampled: EpisodeResults) -> EvaluationArrays:
        """
        :param step: env steps at the evaluation
        :param greedy: the greedy-action episodes
        :param sampled: the sampled-action episodes, on the same seeds
        :return: the evaluation, one eval env per seed
        """
        column = (len(sampled.seeds), 1)

        def as_column(values: Sequence[float], dtype: type) -> np.ndarray:
            return np.asarray(values, dtype=dtype).reshape(column)

        return cls(
            returns=as_column(sampled.returns, np.float32),
            mask=np.ones(column, dtype=bool),
            success=as_column(sampled.successes, np.float32),
            success_mask=np.ones(column, dtype=bool),
            step=step,
            eval_seeds=np.asarray(sampled.seeds, dtype=np.int64),
            returns_greedy=as_column(greedy.returns, np.float32),
            success_greedy=as_column(greedy.successes, np.float32),
            lengths=as_column(sampled.lengths, np.int64),
            lengths_greedy=as_column(greedy.lengths, np.int64),
        )

    def to_arrays(self) -> dict[str, np.ndarray]:
        """:return: the entries of the file, the ``None`` ones left out"""
        arrays = {}
        for entry in fields(self):
            value = getattr(self, entry.name)
            if value is not None:
                arrays[entry.name] = np.asarray(value, dtype=np.int64) if entry.name == "step" else value
        return arrays

    def to_npz(self, path: str | os.PathLike[str]) -> Path:
        """
        :param path: the file to write (``eval_file_name(step)`` in ``eval_logs/``)
        :return: the path written
        """
        path = Path(path)
        np.savez(path, **self.to_arrays())  # type: ignore[arg-type]
        return path

    @classmethod
    def from_npz(cls, path: str | os.PathLike[str]) -> EvaluationArrays:
        """
        Read an evaluation file: the plugin's, an older plugin file, or the reference system's.

        :param path: the ``.npz``
        :return: its arrays; ``step`` from its ``step`` entry, else from ``step<N>`` in its name
        :raises ValueError: if it holds no metric's values, or tells no step
        """
        path = Path(path)
        with np.load(path) as data:
            entries = {entry.name: data[entry.name] for entry in fields(cls) if entry.name in data}
        if not any(values_key in entries for values_key, _ in METRIC_KEYS.values()):
            raise ValueError(
                f"{path} holds none of the evaluation entries "
                f"{', '.join(key for key, _ in METRIC_KEYS.values())}: is it an evaluation file?"
            )
        if "step" in entries:
            entries["step"] = int(entries["step"])
        else:
            match = _STEP_IN_NAME.search(path.name)
            if match is None:
                raise ValueError(f"{path} has no 'step' entry and no 'step<N>' in its name.")
            entries["step"] = int(match.group(1))
        return cls(**entries)
