"""The report of a comparison: ``report.md``, ``summary.csv`` and PNG figures, from the runs' evaluation
files (the compare runner's, or the reference system's own). This module aggregates the runs, writes the
CSV and the figures; the text of ``report.md`` is :mod:`sb3_llmae.experiments.report_markdown`'s."""

from __future__ import annotations

import csv
import itertools
import json
import logging
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sb3_llmae.experiments.aggregate import (
    BOOTSTRAP_SEED,
    PAIR_REPS,
    REPS,
    THRESHOLD,
    CurveEstimate,
    Interval,
    MetricSummary,
    probability_of_improvement,
    score_matrix,
    summarize_metric,
)
from sb3_llmae.experiments.plots import (
    HeatmapPair,
    plot_curves,
    plot_heatmap_panel,
    plot_probability_of_improvement,
    summed_heatmaps,
)
from sb3_llmae.experiments.report_markdown import IMPROVEMENT_METRIC, render_markdown
from sb3_llmae.experiments.run_checks import check_runs, comparison_line
from sb3_llmae.experiments.runs import RunCurves, discover_runs
from sb3_llmae.run_layout import CONFIG_FILE, METRICS

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.csv"
CURVES_FILE = "curves.png"
IMPROVEMENT_FILE = "probability_of_improvement.png"
HEATMAPS_FILE = "heatmaps.png"
# rl-zoo3's run folders: <env>_<n>
_ZOO_RUN_NAME = re.compile(r"^(?:sb3_llmae-)?(.+-v\d+)_(\d+)$")
SUMMARY_COLUMNS = (
    "method",
    "metric",
    "runs",
    "final_step",
    "final_iqm",
    "ci_low",
    "ci_high",
    "ttt_iqm",
    "ttt_mean_of_runs_reaching",
    "share_of_runs_reaching",
    "lowest_iqm_after_reaching",
)


@dataclass(frozen=True)
class Report:
    """
    What :func:`write_report` computed and wrote.

    :param summaries: per method, per metric, its summary
    :param report_path: ``report.md``
    :param summary_path: ``summary.csv``
    :param plots: the PNG figures written
    :param curves: per metric, per method, its IQM curve over runs with the CI bands
    """

    summaries: Mapping[str, Mapping[str, MetricSummary]]
    report_path: Path
    summary_path: Path
    plots: Sequence[Path] = field(default_factory=list)
    curves: Mapping[str, Mapping[str, CurveEstimate]] = field(default_factory=dict)


def write_report(
    root: str | Path,
    out_dir: str | Path | None = None,
    *,
    threshold: float = THRESHOLD,
    reps: int = REPS,
    seed: int = BOOTSTRAP_SEED,
    title: str | None = None,
) -> Report:
    """
    Aggregate every run under ``root`` per method and write ``report.md``, ``summary.csv`` and the figures.

    Per method and metric (return and success, from sampled actions and, where the files have them, greedy
    ones): the final IQM over runs with its stratified-bootstrap CI, time to ``threshold`` on the IQM
    curve, the reference system's time to threshold (mean over the runs reaching it), the share of runs
    reaching it, the lowest IQM after reaching it. Figures: IQM curves with CI bands, probability of
    improvement between methods, and where runs saved heatmaps, a first-vs-last visitation panel.

    :param root: a compare output folder, or the reference system's ``multirun/<date>`` folder
    :param out_dir: where to write; ``None``: ``root``
    :param threshold: the level of time to threshold and of the share of runs reaching it
    :param reps: bootstrap resamples of the IQM curves and final scores
    :param seed: seed of the bootstrap, so that the same runs give the same report
    :param title: the report's title; ``None``: from ``root``
    :return: what was computed and written
    """
    if not 0.0 <= threshold <= 1.0:  # NaN too
        raise ValueError(f"threshold must be a success rate or return in [0, 1], got {threshold}.")
    runs = discover_runs(root)
    facts, warnings = check_runs(runs)
    out = Path(out_dir) if out_dir is not None else Path(root)
    out.mkdir(parents=True, exist_ok=True)
    summaries: dict[str, dict[str, MetricSummary]] = {}
    curves: dict[str, dict[str, CurveEstimate]] = {}
    for method, method_runs in runs.items():
        for metric in METRICS:
            result = summarize_metric(method_runs, metric, threshold=threshold, reps=reps, seed=seed)
            if result is not None:
                summaries.setdefault(method, {})[metric] = result[0]
                curves.setdefault(metric, {})[method] = result[1]
    figure_title = title or figure_title_of(runs)
    plots = [plot_curves(curves, out / CURVES_FILE, threshold=threshold, title=figure_title)]
    improvements = pairwise_improvements(runs, IMPROVEMENT_METRIC, seed=seed)
    if improvements:
        plots.append(
            plot_probability_of_improvement(improvements, out / IMPROVEMENT_FILE, IMPROVEMENT_METRIC)
        )
    # every method gets a row, one without heatmaps a row saying so
    heatmaps: dict[str, HeatmapPair | None] = {
        method: summed_heatmaps(method_runs) for method, method_runs in runs.items()
    }
    if any(pair is not None for pair in heatmaps.values()):
        note = layout_note(env_ids_of(runs))
        plots.append(plot_heatmap_panel(heatmaps, out / HEATMAPS_FILE, note=note, title=figure_title))
    summary_path = write_summary_csv(summaries, out / SUMMARY_FILE)
    report_path = out / REPORT_FILE
    report_path.write_text(
        render_markdown(
            runs,
            summaries,
            improvements,
            plots,
            threshold=threshold,
            reps=reps,
            title=title or f"Report: {Path(root).resolve().name}",
            preamble=[comparison_line(facts), *(f"**Warning**: {warning}" for warning in warnings)],
        )
    )
    return Report(
        summaries=summaries, report_path=report_path, summary_path=summary_path, plots=plots, curves=curves
    )


def run_config(run: RunCurves) -> dict[str, Any]:
    """:return: the run's ``config.json`` (the compare runner's), or ``{}``"""
    path = run.path / CONFIG_FILE
    try:
        config = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


def env_ids_of(runs: Mapping[str, Sequence[RunCurves]]) -> list[str]:
    """
    :param runs: per method, its runs
    :return: the envs they trained on, as their ``config.json`` or rl-zoo3's ``<env>_<n>`` folder names say
    """
    envs = set()
    for run in itertools.chain.from_iterable(runs.values()):
        settings = run_config(run).get("settings", {})
        env_id = settings.get("env_id") if isinstance(settings, dict) else None
        if env_id is None and (match := _ZOO_RUN_NAME.match(run.run)):
            env_id = match.group(1)
        if env_id:
            envs.add(str(env_id))
    return sorted(envs)


def figure_title_of(runs: Mapping[str, Sequence[RunCurves]]) -> str:
    """:return: the env(s), the budget (the largest evaluated step) and the runs per method, in one line"""
    budget = max((int(run.steps[-1]) for run in itertools.chain.from_iterable(runs.values())), default=0)
    counts = sorted({len(method_runs) for method_runs in runs.values()}) or [0]
    per_method = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    envs = env_ids_of(runs)
    return (
        f"{', '.join(envs) or 'env not recorded'}: {budget:,} env steps, "
        f"{per_method} run{'s' if counts[-1] != 1 else ''} per method"
    )


def layout_note(env_ids: Sequence[str]) -> str:
    """:return: what a heatmap cell means on these envs: one map, or positions over changing layouts"""
    if len(env_ids) != 1:
        return "cells are grid positions (envs not recorded, or several: layouts may differ)"
    from sb3_llmae.training.callbacks.heatmap import layout_is_fixed

    try:
        fixed = layout_is_fixed(env_ids[0])
    except ValueError:  # not a MiniGrid id
        return "cells are grid positions"
    if fixed:
        return "one layout in every episode and run: the runs' visits are summed on the same map"
    return (
        "the layout changes every episode (and so between runs): cells are grid positions summed over "
        "layouts, not places on one map"
    )


def pairwise_improvements(
    runs: Mapping[str, Sequence[RunCurves]], metric: str, reps: int = PAIR_REPS, seed: int = BOOTSTRAP_SEED
) -> dict[tuple[str, str], Interval]:
    """
    :param runs: per method, its runs
    :param metric: the metric compared, at each run's final evaluation (on its method's step grid)
    :param reps: bootstrap resamples
    :param seed: seed of the resampling
    :return: per pair (X, Y) of methods holding ``metric`` (X before Y in method order), P(X > Y) with its
        CI (P(Y > X) is one minus it)
    """
    finals = {}
    for method, method_runs in runs.items():
        matrix = score_matrix(method_runs, metric)
        if matrix is not None:
            finals[method] = matrix.scores[:, -1]
    return {
        (x, y): probability_of_improvement(finals[x], finals[y], reps=reps, seed=seed)
        for x, y in itertools.combinations(finals, 2)
    }


def write_summary_csv(summaries: Mapping[str, Mapping[str, MetricSummary]], path: Path) -> Path:
    """
    :param summaries: per method, per metric, its summary
    :param path: the CSV to write, one row per method and metric (``SUMMARY_COLUMNS``)
    :return: ``path``
    """
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(SUMMARY_COLUMNS)
        for method, by_metric in summaries.items():
            for metric, summary in by_metric.items():
                writer.writerow(
                    [
                        method,
                        metric,
                        summary.n_runs,
                        summary.final_step,
                        summary.final.value,
                        summary.final.low,
                        summary.final.high,
                        _blank(summary.ttt_iqm),
                        _blank(summary.ttt_mean_reached),
                        summary.share_reached,
                        _blank(summary.lowest_after_reached),
                    ]
                )
    return path


def _blank(value: float | None) -> str | float:
    return "" if value is None else value
