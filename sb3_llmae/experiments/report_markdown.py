"""The text of ``report.md``: its sections (caveats, methods' settings, headline and per-metric tables,
probability of improvement, figures, how the figures are computed), rendered from a report's summaries."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from sb3_llmae.experiments.aggregate import CONFIDENCE, MIN_RUNS, PAIR_REPS, Interval, MetricSummary
from sb3_llmae.experiments.plots import METRIC_LABELS
from sb3_llmae.experiments.runs import RunCurves
from sb3_llmae.run_layout import CONFIG_FILE

# The metric pairs of methods are compared on: the reference's headline figure.
IMPROVEMENT_METRIC = "return"
CI = f"{CONFIDENCE:.0%} CI"


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
    preamble: Sequence[str] = (),
) -> str:
    """
    :param preamble: paragraphs under the title (the env and budgets, warnings)
    :return: ``report.md``: the headline table (the reference system's columns), one table per metric,
        probability of improvement, the figures, and how each figure was computed
    """
    level = f"{threshold:g}"
    lines = [f"# {title}", ""]
    for paragraph in preamble:
        lines += [paragraph, ""]
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
