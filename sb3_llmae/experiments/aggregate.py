"""Aggregating runs as the field does (rliable): IQM over runs with stratified-bootstrap confidence
intervals, curves on a common step grid, time to threshold."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
from rliable import library, metrics

from sb3_llmae.experiments.runs import RunCurves

THRESHOLD = 0.8
CONFIDENCE = 0.95
# Bootstrap resamples: rliable's default.
REPS = 50_000
# Pairwise comparisons bootstrap two samples at once; rliable's examples use 2,000 resamples for them.
PAIR_REPS = 2_000
# Seed of every bootstrap, so that the same runs give the same report.
BOOTSTRAP_SEED = 0
# Fewer runs than this per method and a bootstrap CI says little (with one, or runs all alike, it
# collapses to a point such as 1.000 [1.000, 1.000]).
MIN_RUNS = 3


@dataclass(frozen=True)
class ScoreMatrix:
    """
    One metric of one method's runs on a common step grid.

    :param steps: the union of the runs' evaluated steps, increasing
    :param scores: (runs, steps): each run's curve interpolated linearly onto ``steps`` (constant past
        its own ends)
    """

    steps: np.ndarray
    scores: np.ndarray


@dataclass(frozen=True)
class Interval:
    """A point estimate with its confidence interval."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class MetricSummary:
    """
    One metric of one method, aggregated over its runs.

    :param metric: the metric (``return``, ``success``, ``return_greedy``, ``success_greedy``)
    :param n_runs: number of runs
    :param final_step: the last step of the grid, where the final score is read
    :param final: IQM over runs of the final score, with its stratified-bootstrap CI
    :param ttt_iqm: first step at which the IQM curve across runs reaches the threshold (``None``: never)
    :param ttt_mean_reached: the reference system's time-to-threshold: the mean, over the runs that reach
        the threshold, of each run's first step at or above it (``None``: no run does)
    :param share_reached: fraction of runs that reach the threshold at some evaluation
    :param lowest_after_reached: lowest value of the IQM curve from ``ttt_iqm`` on (``None``: never reached)
    """

    metric: str
    n_runs: int
    final_step: int
    final: Interval
    ttt_iqm: int | None
    ttt_mean_reached: float | None
    share_reached: float
    lowest_after_reached: float | None


def score_matrix(runs: Sequence[RunCurves], metric: str) -> ScoreMatrix | None:
    """
    The reference's per-method matrix: each run interpolated onto the union of all runs' steps.

    :param runs: one method's runs
    :param metric: a metric name
    :return: the matrix of the runs holding ``metric``, or ``None`` if none does
    """
    having = [run for run in runs if metric in run.scores]
    if not having:
        return None
    steps = np.unique(np.concatenate([run.steps for run in having]))
    scores = np.stack([np.interp(steps, run.steps, run.scores[metric]) for run in having])
    return ScoreMatrix(steps=steps, scores=scores)


def iqm(scores: np.ndarray) -> float:
    """
    :param scores: scores of runs (any shape: all are pooled)
    :return: their interquartile mean (rliable's ``aggregate_iqm``: the mean of the middle 50%)
    """
    return float(metrics.aggregate_iqm(np.asarray(scores, dtype=np.float64)))


def iqm_per_step(scores: np.ndarray) -> np.ndarray:
    """
    The IQM over runs at each step, as rliable's ``aggregate_iqm`` (``scipy.stats.trim_mean`` cutting 25%
    at each end) computes it for one step, in one vectorised pass: a bootstrap calls it once per resample.

    :param scores: (runs, steps), or rliable's (runs, tasks=1, steps)
    :return: (steps,)
    """
    scores = np.sort(np.asarray(scores, dtype=np.float64).reshape(scores.shape[0], -1), axis=0)
    cut = int(0.25 * scores.shape[0])
    return scores[cut : scores.shape[0] - cut].mean(axis=0)


@dataclass(frozen=True)
class CurveEstimate:
    """
    The IQM over runs at each step with its stratified-bootstrap confidence band.

    :param steps: the step grid
    :param iqm: IQM at each step
    :param low: lower bound of the ``CONFIDENCE`` interval at each step
    :param high: upper bound
    """

    steps: np.ndarray
    iqm: np.ndarray
    low: np.ndarray
    high: np.ndarray

    @property
    def final(self) -> Interval:
        """:return: the estimate at the last step"""
        return Interval(float(self.iqm[-1]), float(self.low[-1]), float(self.high[-1]))


@contextmanager
def _seeded_bootstrap(seed: int) -> Iterator[np.random.RandomState]:
    """
    Make rliable's bootstrap reproducible without touching the caller's random state.

    rliable 1.2's ``StratifiedBootstrap`` draws its resamples from NumPy's global generator
    (``np.random.choice``) whatever ``random_state`` it is given, so the global state is seeded here
    and restored afterwards. It also passes ``random_state`` to arch, which deprecates that keyword
    (a warning that is rliable's to fix, not the user's).
    """
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="random_state is deprecated", category=FutureWarning)
            yield np.random.RandomState(seed)
    finally:
        np.random.set_state(saved)


def bootstrap_iqm(matrix: ScoreMatrix, reps: int = REPS, seed: int = BOOTSTRAP_SEED) -> CurveEstimate:
    """
    IQM over runs at every step with percentile confidence intervals from rliable's stratified bootstrap
    (runs resampled with replacement, whole curves at once, so every step sees the same resamples).

    :param matrix: one metric of one method's runs
    :param reps: bootstrap resamples
    :param seed: seed of the resampling, so that a report is reproducible
    :return: the estimate
    """
    scores = matrix.scores[:, None, :]  # rliable's (runs, tasks, steps)
    point, interval = _interval_estimate(scores, iqm_per_step, reps, seed)
    return CurveEstimate(matrix.steps, point, interval[0], interval[1])


def first_step_reaching(steps: np.ndarray, curve: np.ndarray, threshold: float = THRESHOLD) -> int | None:
    """
    :param steps: evaluated steps
    :param curve: values at those steps
    :param threshold: the level to reach
    :return: the first step whose value is at or above ``threshold``, or ``None``
    """
    reached = np.flatnonzero(np.asarray(curve) >= threshold)
    return int(steps[reached[0]]) if reached.size else None


def summarize_metric(
    runs: Sequence[RunCurves],
    metric: str,
    threshold: float = THRESHOLD,
    reps: int = REPS,
    seed: int = BOOTSTRAP_SEED,
) -> tuple[MetricSummary, CurveEstimate] | None:
    """
    :param runs: one method's runs
    :param metric: a metric name
    :param threshold: the level of time-to-threshold and of the share of runs reaching it
    :param reps: bootstrap resamples
    :param seed: seed of the resampling
    :return: the metric's summary and its IQM curve, or ``None`` if no run holds it
    """
    matrix = score_matrix(runs, metric)
    if matrix is None:
        return None
    curve = bootstrap_iqm(matrix, reps=reps, seed=seed)
    ttt_iqm = first_step_reaching(curve.steps, curve.iqm, threshold)
    # Per run, on its own evaluations (no interpolated points).
    own_ttts = [
        first_step_reaching(run.steps, run.scores[metric], threshold) for run in runs if metric in run.scores
    ]
    reached_ttts = [step for step in own_ttts if step is not None]
    lowest = None
    if ttt_iqm is not None:
        lowest = float(curve.iqm[np.searchsorted(curve.steps, ttt_iqm) :].min())
    summary = MetricSummary(
        metric=metric,
        n_runs=matrix.scores.shape[0],
        final_step=int(curve.steps[-1]),
        final=curve.final,
        ttt_iqm=ttt_iqm,
        ttt_mean_reached=float(np.mean(reached_ttts)) if reached_ttts else None,
        share_reached=len(reached_ttts) / len(own_ttts),
        lowest_after_reached=lowest,
    )
    return summary, curve


def probability_of_improvement(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int = PAIR_REPS, seed: int = BOOTSTRAP_SEED
) -> Interval:
    """
    rliable's probability of improvement: the chance that a run of X scores above a run of Y (ties
    count half), with a stratified-bootstrap CI, X's and Y's runs resampled independently.

    :param scores_x: X's final scores, one per run
    :param scores_y: Y's final scores, one per run
    :param reps: bootstrap resamples
    :param seed: seed of the resampling
    :return: the probability and its ``CONFIDENCE`` interval
    """

    def estimate(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        return np.array([metrics.probability_of_improvement(x, y)])

    pair = [np.asarray(scores_x, dtype=np.float64)[:, None], np.asarray(scores_y, dtype=np.float64)[:, None]]
    point, interval = _interval_estimate(pair, estimate, reps, seed)
    return Interval(float(point[0]), float(interval[0, 0]), float(interval[1, 0]))


def _interval_estimate(
    scores: np.ndarray | list[np.ndarray], estimator: Callable[..., np.ndarray], reps: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """
    :param scores: rliable's score matrix of one estimate (or the pair of matrices it compares)
    :param estimator: what is estimated from them
    :param reps: bootstrap resamples
    :param seed: seed of the resampling
    :return: the point estimate and its ``CONFIDENCE`` interval (low and high rows), from rliable's
        stratified bootstrap
    """
    with _seeded_bootstrap(seed) as random_state:
        points, intervals = library.get_interval_estimates(
            {"estimate": scores},
            estimator,
            reps=reps,
            confidence_interval_size=CONFIDENCE,
            random_state=random_state,
        )
    return np.asarray(points["estimate"]), np.asarray(intervals["estimate"])
