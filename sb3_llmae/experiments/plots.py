"""The report's figures: IQM curves with confidence bands, probability of improvement, heatmap panels."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import matplotlib
import numpy as np

from sb3_llmae.experiments.aggregate import CurveEstimate, Interval
from sb3_llmae.experiments.runs import RunCurves

matplotlib.use("Agg")  # files only, never a window
from matplotlib import pyplot as plt

METRIC_LABELS = {
    "return": "return (sampled actions)",
    "success": "success rate (sampled actions)",
    "return_greedy": "return (greedy actions)",
    "success_greedy": "success rate (greedy actions)",
}
DPI = 120


def method_colors(methods: Sequence[str]) -> dict[str, tuple[float, ...]]:
    """:return: one colour per method, the same in every figure of a report"""
    palette = plt.get_cmap("tab10")
    return {method: tuple(palette(index % 10)) for index, method in enumerate(methods)}


def plot_curves(
    curves: Mapping[str, Mapping[str, CurveEstimate]],
    path: Path,
    threshold: float | None = None,
    title: str = "",
) -> Path:
    """
    One panel per metric: each method's IQM over runs against env steps, with its confidence band.

    :param curves: per metric, per method, the IQM curve
    :param path: the PNG to write
    :param threshold: draw this level as a dotted line (e.g. the time-to-threshold level)
    :param title: the figure's title
    :return: ``path``
    """
    metrics = list(curves)
    methods = sorted({method for by_method in curves.values() for method in by_method})
    colors = method_colors(methods)
    columns = min(len(metrics), 2)
    rows = (len(metrics) + columns - 1) // columns
    figure, axes = plt.subplots(rows, columns, figsize=(5.2 * columns, 3.6 * rows), squeeze=False, dpi=DPI)
    try:
        for axis, metric in zip(axes.flat, metrics, strict=False):
            for method, curve in curves[metric].items():
                axis.plot(curve.steps, curve.iqm, color=colors[method], label=method, linewidth=1.8)
                axis.fill_between(curve.steps, curve.low, curve.high, color=colors[method], alpha=0.2)
            if threshold is not None:
                axis.axhline(threshold, color="0.5", linestyle=":", linewidth=1)
            axis.set_xlabel("env steps")
            axis.set_ylabel(f"IQM {METRIC_LABELS.get(metric, metric)}")
            axis.set_ylim(-0.02, 1.02)
            axis.grid(alpha=0.3)
            axis.legend(fontsize=8, loc="lower right")
        for axis in list(axes.flat)[len(metrics) :]:
            axis.set_visible(False)
        if title:
            figure.suptitle(title, fontsize=10)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path


def plot_probability_of_improvement(
    estimates: Mapping[tuple[str, str], Interval], path: Path, metric: str = "return"
) -> Path:
    """
    For each pair of methods (X, Y), the probability that a run of X ends above a run of Y, with its CI.

    :param estimates: per (X, Y), the probability and its confidence interval
    :param path: the PNG to write
    :param metric: the metric compared (for the axis label)
    :return: ``path``
    """
    pairs = list(estimates)
    figure, axis = plt.subplots(figsize=(6.5, 0.6 * len(pairs) + 1.4), dpi=DPI)
    try:
        for row, pair in enumerate(pairs):
            estimate = estimates[pair]
            axis.barh(
                row, estimate.high - estimate.low, left=estimate.low, height=0.5, color="tab:blue", alpha=0.5
            )
            axis.plot([estimate.value, estimate.value], [row - 0.25, row + 0.25], color="black", linewidth=2)
        axis.axvline(0.5, color="0.4", linestyle="--", linewidth=1)
        axis.set_ylim(len(pairs) - 0.4, -0.6)
        axis.set_yticks(range(len(pairs)), labels=[f"P({x} > {y})" for x, y in pairs])
        axis.set_xlim(-0.02, 1.02)
        axis.set_xlabel(f"P(X > Y), final {METRIC_LABELS.get(metric, metric)}", fontsize=9)
        axis.grid(axis="x", alpha=0.3)
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path


@dataclass(frozen=True)
class HeatmapPair:
    """
    Where one method's agents stood early and late in training, the visits of all its runs summed.

    :param first: visits until each run's first saved heatmap (at most ``first_step``)
    :param last: visits in each run's last window of about one save interval (``last_start`` to
        ``last_step``)
    """

    first: np.ndarray
    first_step: int
    last: np.ndarray
    last_start: int
    last_step: int


def last_window(files: Sequence[tuple[int, Path]]) -> tuple[int, np.ndarray]:
    """
    The heatmap callback saves visits counted since training started, every save interval and at the end;
    the last window is the last save minus the latest save at least one interval before it (so that a
    short final piece, e.g. 240 steps, does not stand for the end of training).

    :param files: one run's heatmaps, (step, path) by step
    :return: the window's first step and its visits
    """
    last_step, last_path = files[-1]
    counts = load_heatmap(last_path)
    if len(files) == 1:
        return 0, counts
    interval = files[1][0] - files[0][0]
    earlier = [(step, path) for step, path in files[:-1] if step <= last_step - interval] or [files[-2]]
    start, start_path = earlier[-1]
    return start, counts - load_heatmap(start_path)


def load_heatmap(path: Path) -> np.ndarray:
    """
    :param path: a run's saved visit counts (``heatmaps/visits_step<N>.npy``)
    :return: them
    :raises ValueError: naming the file and the fix when it is empty or half-written
    """
    try:
        return np.asarray(np.load(path))
    except (OSError, ValueError, EOFError) as error:
        raise ValueError(
            f"{path} cannot be read ({type(error).__name__}: {error}): it is empty or half-written. Delete "
            "it (the heatmap panel then leaves that step out) and report again."
        ) from None


def summed_heatmaps(runs: Sequence[RunCurves]) -> HeatmapPair | None:
    """
    :param runs: one method's runs
    :return: the first heatmap and the last window (:func:`last_window`) of every run, summed; ``None``
        if no run has heatmaps (or they differ in shape)
    """
    firsts, lasts, first_steps, last_starts, last_steps = [], [], [], [], []
    for run in runs:
        files = run.heatmap_files()
        if not files:
            continue
        first_steps.append(files[0][0])
        firsts.append(load_heatmap(files[0][1]))
        start, counts = last_window(files)
        last_starts.append(start)
        lasts.append(counts)
        last_steps.append(files[-1][0])
    if not firsts or len({counts.shape for counts in firsts + lasts}) != 1:
        return None
    return HeatmapPair(
        first=np.sum(firsts, axis=0),
        first_step=max(first_steps),
        last=np.sum(lasts, axis=0),
        last_start=min(last_starts),
        last_step=max(last_steps),
    )


def plot_heatmap_panel(heatmaps: Mapping[str, HeatmapPair], path: Path) -> Path:
    """
    One row per method: where its agents stood in the first and in the last window of training, the
    visits of all its runs summed, on a log colour scale.

    :param heatmaps: per method, what :func:`summed_heatmaps` returns
    :param path: the PNG to write
    :return: ``path``
    """
    methods = list(heatmaps)
    figure, axes = plt.subplots(len(methods), 2, figsize=(7.0, 3.2 * len(methods)), squeeze=False, dpi=DPI)
    try:
        for row, method in enumerate(methods):
            pair = heatmaps[method]
            for axis, counts, label in (
                (axes[row, 0], pair.first, f"until step {pair.first_step:,}"),
                (axes[row, 1], pair.last, f"steps {pair.last_start:,}-{pair.last_step:,}"),
            ):
                norm = matplotlib.colors.LogNorm(vmin=1, vmax=max(int(counts.max()), 2))
                image = axis.imshow(np.ma.masked_equal(counts, 0), cmap="inferno", norm=norm)
                axis.set_facecolor("white")
                axis.set_title(f"{method}: {label}", fontsize=9)
                axis.set_xticks([])
                axis.set_yticks([])
                figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04, label="visits (log)")
        figure.tight_layout()
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path
