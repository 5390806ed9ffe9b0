"""The report of a comparison: ``report.md``, ``summary.csv`` and PNG figures, from the runs' evaluation
files (the compare runner's, or the reference system's own)."""

from __future__ import annotations

import csv
import itertools
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sb3_llmae.experiments.aggregate import (
    BOOTSTRAP_SEED,
    CONFIDENCE,
    MIN_RUNS,
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
    METRIC_LABELS,
    HeatmapPair,
    plot_curves,
    plot_heatmap_panel,
    plot_probability_of_improvement,
    summed_heatmaps,
)
from sb3_llmae.experiments.runs import RunCurves, discover_runs
from sb3_llmae.run_layout import CONFIG_FILE, METRICS

logger = logging.getLogger(__name__)

REPORT_FILE = "report.md"
SUMMARY_FILE = "summary.csv"
CURVES_FILE = "curves.png"
IMPROVEMENT_FILE = "probability_of_improvement.png"
HEATMAPS_FILE = "heatmaps.png"
# The metric pairs of methods are compared on: the reference's headline figure.
IMPROVEMENT_METRIC = "return"
CI = f"{CONFIDENCE:.0%} CI"
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
    runs = discover_runs(root)
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
    plots = [plot_curves(curves, out / CURVES_FILE, threshold=threshold, title=title or "")]
    improvements = pairwise_improvements(runs, IMPROVEMENT_METRIC, seed=seed)
    if improvements:
        plots.append(
            plot_probability_of_improvement(improvements, out / IMPROVEMENT_FILE, IMPROVEMENT_METRIC)
        )
    heatmaps: dict[str, HeatmapPair] = {}
    for method, method_runs in runs.items():
        pair = summed_heatmaps(method_runs)
        if pair is not None:
            heatmaps[method] = pair
    if heatmaps:
        plots.append(plot_heatmap_panel(heatmaps, out / HEATMAPS_FILE))
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
        )
    )
    return Report(
        summaries=summaries, report_path=report_path, summary_path=summary_path, plots=plots, curves=curves
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


def _ci(estimate: Interval) -> str:
    """:return: ``[low, high]``, marked when the bootstrap collapsed it to a point"""
    collapsed = " (collapsed)" if estimate.low == estimate.high else ""
    return f"[{estimate.low:.3f}, {estimate.high:.3f}]{collapsed}"


def _interval(summary: MetricSummary | None) -> str:
    if summary is None:
        return "n/a"
    return f"{summary.final.value:.3f} {_ci(summary.final)}"


def _steps(value: float | None) -> str:
    if value is None:
        return "never"
    # "29k" as the reference writes round thousands; other steps exactly (a warm-up ends at 2,048)
    return f"{value / 1000:.0f}k" if value >= 1000 and round(value) % 1000 == 0 else f"{value:,.0f}"


def _share(summary: MetricSummary | None) -> str:
    return "n/a" if summary is None else f"{summary.share_reached:.0%}"


def _lowest(summary: MetricSummary | None) -> str:
    if summary is None:
        return "n/a"
    return "never reached" if summary.lowest_after_reached is None else f"{summary.lowest_after_reached:.3f}"


def render_markdown(
    runs: Mapping[str, Sequence[RunCurves]],
    summaries: Mapping[str, Mapping[str, MetricSummary]],
    improvements: Mapping[tuple[str, str], Interval],
    plots: Sequence[Path],
    *,
    threshold: float,
    reps: int,
    title: str,
) -> str:
    """
    :return: ``report.md``: the headline table (the reference system's columns), one table per metric,
        probability of improvement, the figures, and how each figure was computed
    """
    level = f"{threshold:g}"
    lines = [f"# {title}", ""]
    lines.append(
        ", ".join(
            f"**{method}**: {len(method_runs)} runs (seeds "
            f"{', '.join(str(run.seed) if run.seed is not None else run.run for run in method_runs)})"
            for method, method_runs in runs.items()
        )
    )
    lines += _caveats(runs, summaries, improvements)
    lines += _settings_table(runs)
    lines += _headline_table(summaries, level)
    lines += _metric_table(summaries, level)
    lines += _improvement_table(improvements)
    lines += ["", "## Figures", ""]
    lines += [f"![{path.stem}]({path.name})" for path in plots]
    lines += _method_notes(level, reps)
    return "\n".join(lines)


def _caveats(
    runs: Mapping[str, Sequence[RunCurves]],
    summaries: Mapping[str, Mapping[str, MetricSummary]],
    improvements: Mapping[tuple[str, str], Interval],
) -> list[str]:
    """:return: the caveats section: methods with too few runs for a CI, and CIs collapsed to a point"""
    notes = [
        f"- **{method}** has {len(method_runs)} run{'s' if len(method_runs) > 1 else ''}: fewer than "
        f"{MIN_RUNS}, so its {CI}s and its probabilities of improvement say little; compare over {MIN_RUNS} "
        "or more seeds."
        for method, method_runs in runs.items()
        if len(method_runs) < MIN_RUNS
    ]
    collapsed = [
        f"{method} {METRIC_LABELS.get(metric, metric)}"
        for method, by_metric in summaries.items()
        for metric, summary in by_metric.items()
        if summary.final.low == summary.final.high
    ]
    collapsed += [
        f"P({x} > {y})" for (x, y), estimate in improvements.items() if estimate.low == estimate.high
    ]
    if collapsed:
        notes.append(
            f"- CIs marked (collapsed) are a single point ({', '.join(collapsed)}): every bootstrap resample "
            "gave the same value, because the runs are too few or all alike. Read them as no interval at "
            "all, not as certainty."
        )
    return ["", "## Caveats", "", *notes] if notes else []


def _training_settings(run: RunCurves) -> dict[str, object] | None:
    """:return: how a compare run trained (its ``config.json``: init and resolved training settings)"""
    path = run.path / CONFIG_FILE
    try:
        config = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(config, dict) or not isinstance(config.get("training"), dict):
        return None
    training = dict(config["training"])
    ppo_kwargs = training.pop("ppo_kwargs", None) or {}
    method = config.get("method")
    return {
        "init": method.get("init") if isinstance(method, dict) else None,
        **training,
        **{f"ppo.{key}": value for key, value in ppo_kwargs.items()},
    }


def _settings_table(runs: Mapping[str, Sequence[RunCurves]]) -> list[str]:
    """:return: the section listing how each method trained, where its runs' ``config.json`` say it"""
    settings: dict[str, dict[str, object]] = {}
    mixed = []
    for method, method_runs in runs.items():
        found = [_training_settings(run) for run in method_runs]
        known = [entry for entry in found if entry is not None]
        if known:
            settings[method] = known[0]
            if any(entry != known[0] for entry in known[1:]):
                mixed.append(method)
    if not settings:
        return []
    keys = sorted(
        {key for entry in settings.values() for key in entry}, key=lambda key: (key.startswith("ppo."), key)
    )
    first = next(iter(settings.values()))
    shared = [
        key
        for key in keys
        if all(key in entry and entry[key] == first.get(key) for entry in settings.values())
    ]
    differing = [key for key in keys if key not in shared]
    lines = [
        "",
        "## Methods' settings",
        "",
        "How each method trained (its runs' `config.json`; PPO settings resolved over the reference recipe).",
    ]
    if differing and len(settings) > 1:
        lines += ["", "| method | " + " | ".join(differing) + " |", "|" + "---|" * (len(differing) + 1)]
        lines += [
            f"| {method} | " + " | ".join(_setting(entry.get(key)) for key in differing) + " |"
            for method, entry in settings.items()
        ]
    elif differing:
        shared = keys
    lines += ["", "Every method: " + ", ".join(f"{key} {_setting(first[key])}" for key in shared) + "."]
    lines += [
        f"- Runs of **{method}** differ in their settings (see their `config.json`)." for method in mixed
    ]
    return lines


def _setting(value: object) -> str:
    return "-" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def _headline_table(summaries: Mapping[str, Mapping[str, MetricSummary]], level: str) -> list[str]:
    """:return: the headline section: the reference system's columns, one row per method"""
    lines = _table_start(
        "Headline",
        [
            "method",
            "final IQM return",
            CI,
            f"TTT@{level} return: IQM curve / runs' mean",
            f"runs ≥{level}",
            "final IQM success",
            f"TTT@{level} success: IQM curve / runs' mean",
            f"final IQM greedy success ({CI})",
        ],
    )
    for method, by_metric in summaries.items():
        ret, success = by_metric.get("return"), by_metric.get("success")
        cells = [method]
        cells += (
            ["n/a"] * 3
            if ret is None
            else [
                f"{ret.final.value:.3f}",
                _ci(ret.final),
                f"{_steps(ret.ttt_iqm)} / {_steps(ret.ttt_mean_reached)}",
            ]
        )
        cells.append(_share(ret))
        cells += (
            ["n/a"] * 2
            if success is None
            else [
                f"{success.final.value:.3f}",
                f"{_steps(success.ttt_iqm)} / {_steps(success.ttt_mean_reached)}",
            ]
        )
        cells.append(_interval(by_metric.get("success_greedy")))
        lines.append("| " + " | ".join(cells) + " |")
    lines += [
        "",
        f"Return and success come from **sampled** actions (as the reference system measured); "
        "greedy ones from `predict(deterministic=True)`, where the evaluation files hold them. "
        f"TTT@{level}, IQM curve: first evaluated step at which the IQM over runs reaches {level}; "
        f"runs' mean: each run's first step at or above {level}, averaged over the runs that reach it "
        "(how the reference system's published figures were computed).",
    ]
    return lines


def _metric_table(summaries: Mapping[str, Mapping[str, MetricSummary]], level: str) -> list[str]:
    """:return: the section of every metric of every method"""
    lines = _table_start(
        "Every metric",
        [
            "method",
            "metric",
            "runs",
            "final step",
            f"final IQM ({CI})",
            f"TTT@{level} (IQM curve)",
            f"mean TTT@{level} of runs reaching it",
            f"runs ≥{level}",
            f"lowest IQM after reaching {level}",
        ],
    )
    for method, by_metric in summaries.items():
        for metric, summary in by_metric.items():
            label = METRIC_LABELS.get(metric, metric)
            lines.append(
                f"| {method} | {label} | {summary.n_runs} | {summary.final_step:,} | {_interval(summary)}"
                f" | {_steps(summary.ttt_iqm)} | {_steps(summary.ttt_mean_reached)} "
                f"| {_share(summary)} | {_lowest(summary)} |"
            )
    return lines


def _improvement_table(improvements: Mapping[tuple[str, str], Interval]) -> list[str]:
    """:return: the probability-of-improvement section, if any pair was compared"""
    if not improvements:
        return []
    return [
        *_table_start(
            f"Probability of improvement (final {METRIC_LABELS[IMPROVEMENT_METRIC]})",
            ["X", "Y", "P(X > Y)", CI],
        ),
        *(
            f"| {x} | {y} | {estimate.value:.3f} | {_ci(estimate)} |"
            for (x, y), estimate in improvements.items()
        ),
    ]


def _table_start(title: str, columns: Sequence[str]) -> list[str]:
    """:return: a section's title and the head of its table"""
    return ["", f"## {title}", "", "| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _method_notes(level: str, reps: int) -> list[str]:
    """:return: the section on how the figures are computed"""
    return [
        "",
        "## How these figures are computed",
        "",
        "- Score of one evaluation: the mean over each eval env's valid episodes, then over the envs "
        "(the reference system's aggregation).",
        "- Per method and metric, each run's curve is interpolated linearly onto the union of its runs' "
        "evaluated steps; the final score is the last step.",
        f"- IQM (interquartile mean) over runs with rliable; {CI}s from rliable's stratified bootstrap "
        f"({reps:,} resamples, percentile method), whole curves resampled at once.",
        f"- Mean TTT@{level} of runs reaching it: each run's first evaluation at or above {level}, "
        "averaged over the runs that reach it (the reference system's published time to threshold).",
        f"- Probability of improvement: rliable's P(X > Y) over final scores, {PAIR_REPS:,} resamples.",
        "- Heatmaps: visits summed over a method's runs, in the first and the last saved window.",
        "",
    ]
