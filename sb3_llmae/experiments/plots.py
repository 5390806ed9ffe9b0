"""The report's figures: IQM curves with confidence bands, probability of improvement, heatmap panels."""

from __future__ import annotations

import textwrap
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
# Curves with at most this many evaluations get a marker on each, so that a single point shows.
MARKER_MAX_POINTS = 25


def method_colors(methods: Sequence[str]) -> dict[str, tuple[float, float, float, float]]:
    """:return: one colour per method (RGBA), the same in every figure of a report"""
    palette = plt.get_cmap("tab10")
    colors = {}
    for index, method in enumerate(methods):
        red, green, blue, alpha = palette(index % 10)
        colors[method] = (red, green, blue, alpha)
    return colors


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
    # constrained layout keeps the legend, outside the panels, from covering any data
    figure, axes = plt.subplots(
        rows, columns, figsize=(5.2 * columns, 3.6 * rows + 0.6), squeeze=False, dpi=DPI, layout="constrained"
    )
    try:
        for axis, metric in zip(axes.flat, metrics, strict=False):
            for method, curve in curves[metric].items():
                color = colors[method]
                marker = "o" if len(curve.steps) <= MARKER_MAX_POINTS else None
                axis.plot(
                    curve.steps,
                    curve.iqm,
                    color=color,
                    label=method,
                    linewidth=1.8,
                    marker=marker,
                    markersize=4,
                )
                if len(curve.steps) == 1:  # a band needs two points: the CI as an error bar
                    axis.errorbar(
                        curve.steps,
                        curve.iqm,
                        yerr=[curve.iqm - curve.low, curve.high - curve.iqm],
                        color=color,
                        capsize=4,
                        linewidth=1.2,
                    )
                else:
                    axis.fill_between(curve.steps, curve.low, curve.high, color=color, alpha=0.2)
            if threshold is not None:
                axis.axhline(threshold, color="0.5", linestyle=":", linewidth=1)
            axis.set_xlabel("env steps")
            axis.set_ylabel(f"IQM {METRIC_LABELS.get(metric, metric)}")
            axis.set_ylim(-0.02, 1.02)
            axis.grid(alpha=0.3)
        for axis in list(axes.flat)[len(metrics) :]:
            axis.set_visible(False)
        handles = [
            matplotlib.lines.Line2D(
                [],
                [],
                color=colors[method],
                linewidth=1.8,
                marker="o",
                markersize=4,
            )
            for method in methods
        ]
        figure.legend(
            handles,
            methods,
            loc="outside lower center",
            ncols=min(len(methods), 4),
            fontsize=8,
            frameon=False,
        )
        if title:
            figure.suptitle(title, fontsize=10)
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
    :param runs: how many runs are summed
    """

    first: np.ndarray
    first_step: int
    last: np.ndarray
    last_start: int
    last_step: int
    runs: int = 1


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
        runs=len(firsts),
    )


def plot_heatmap_panel(
    heatmaps: Mapping[str, HeatmapPair | None], path: Path, note: str = "", title: str = ""
) -> Path:
    """
    One row per method: where its agents stood in the first and in the last window of training, the
    visits of all its runs summed, on one log colour scale shared by every panel (so that colours compare
    across methods and windows). A method without heatmaps gets a row saying so.

    :param heatmaps: per method, what :func:`summed_heatmaps` returns (``None``: no heatmaps)
    :param path: the PNG to write
    :param note: what the cells mean for these runs (e.g. that the layout changes every episode)
    :param title: the figure's title
    :return: ``path``
    """
    methods = list(heatmaps)
    counted = [pair for pair in heatmaps.values() if pair is not None]
    vmax = max([2, *(int(max(pair.first.max(), pair.last.max())) for pair in counted)])
    norm = matplotlib.colors.LogNorm(vmin=1, vmax=vmax)
    # a method without heatmaps gets a short row: its name and that it has none
    heights = [1.0 if heatmaps[method] is not None else 0.2 for method in methods]
    figure, axes = plt.subplots(
        len(methods),
        2,
        figsize=(7.0, 3.0 * sum(heights) + 0.9),
        squeeze=False,
        dpi=DPI,
        layout="constrained",
        gridspec_kw={"height_ratios": heights},
    )
    image = None
    try:
        for row, method in enumerate(methods):
            pair = heatmaps[method]
            if pair is None:
                for axis in axes[row]:
                    axis.set_axis_off()
                axes[row, 0].text(
                    1.0, 0.5, f"{method}: no heatmaps saved", ha="center", va="center", fontsize=10,
                    transform=axes[row, 0].transAxes,
                )  # fmt: skip
                continue
            summed = f"{pair.runs} run{'s' if pair.runs != 1 else ''} summed"
            for axis, counts, label in (
                (axes[row, 0], pair.first, f"until step {pair.first_step:,}"),
                (axes[row, 1], pair.last, f"steps {pair.last_start:,}-{pair.last_step:,}"),
            ):
                image = axis.imshow(np.ma.masked_equal(counts, 0), cmap="inferno", norm=norm)
                axis.set_facecolor("white")
                axis.set_title(f"{method}: {label}\n({summed})", fontsize=9)
                axis.set_xticks([])
                axis.set_yticks([])
        if image is not None:
            figure.colorbar(image, ax=axes, shrink=0.6, label="visits (log, one scale for all panels)")
        if title or note:
            lines = [title, *textwrap.wrap(note, width=90)] if note else [title]
            figure.suptitle("\n".join(line for line in lines if line), fontsize=9)
        figure.savefig(path)
    finally:
        plt.close(figure)
    return path
