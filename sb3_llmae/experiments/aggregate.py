"""Aggregating runs as the field does (rliable): IQM over runs with stratified-bootstrap confidence
intervals, curves on a common step grid, time to threshold."""

from __future__ import annotations

import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

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
    from rliable import metrics  # rliable (arch, scipy) loads when a report is made, not with the CLI

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


def _percentile_interval(estimates: np.ndarray) -> np.ndarray:
    """:return: the (low, high) rows of arch's percentile interval of bootstrap ``estimates`` (reps, k)"""
    alpha = 100 * (1.0 - CONFIDENCE) / 2
    return np.percentile(estimates, [alpha, 100 - alpha], axis=0)


def bootstrap_iqm_curves(
    scores: np.ndarray, reps: int = REPS, seed: int = BOOTSTRAP_SEED, chunk: int = 500
) -> np.ndarray:
    """
    rliable's stratified bootstrap of :func:`iqm_per_step` (``get_interval_estimates`` with the
    percentile method), all resamples at once in NumPy.

    The resamples are rliable's, drawn in the same order from a generator seeded the same way: rliable
    draws each resample's run indices with ``np.random.choice(n_runs, (runs, tasks, steps))`` from
    NumPy's global generator seeded with ``seed`` (see :func:`_seeded_bootstrap`), so that every step
    resamples the runs on its own; here a ``RandomState(seed)`` of its own draws the same indices
    ``chunk`` resamples at a time. The intervals match rliable's up to float rounding (a test checks it).

    :param scores: (runs, steps) or (runs, metrics, steps): the curves of several metrics of the
        same runs are resampled alike, as rliable resamples each with the same seed
    :param reps: bootstrap resamples
    :param seed: seed of the resampling
    :param chunk: resamples per NumPy batch (memory: ``chunk * runs * steps`` indices)
    :return: (2, steps) or (2, metrics, steps): the low and high bounds of the ``CONFIDENCE`` interval
    """
    scores = np.asarray(scores, dtype=np.float64)
    stacked = scores if scores.ndim == 3 else scores[:, None, :]
    n_runs, n_metrics, n_steps = stacked.shape
    random_state = np.random.RandomState(seed)
    cut = int(0.25 * n_runs)
    step_index = np.arange(n_steps)
    estimates = np.empty((reps, n_metrics, n_steps))
    for start in range(0, reps, chunk):
        count = min(chunk, reps - start)
        # rliable's (runs, tasks=1, steps) indices per resample, ``count`` resamples in one draw
        indices = random_state.randint(0, n_runs, size=(count, n_runs, n_steps))
        for metric in range(n_metrics):
            resampled = np.sort(stacked[:, metric, :][indices, step_index], axis=1)
            estimates[start : start + count, metric] = resampled[:, cut : n_runs - cut].mean(axis=1)
    interval = _percentile_interval(estimates.reshape(reps, -1)).reshape(2, n_metrics, n_steps)
    return interval if scores.ndim == 3 else interval[:, 0, :]


def bootstrap_iqm(matrix: ScoreMatrix, reps: int = REPS, seed: int = BOOTSTRAP_SEED) -> CurveEstimate:
    """
    IQM over runs at every step with percentile confidence intervals from rliable's stratified bootstrap
    (:func:`bootstrap_iqm_curves`: runs resampled with replacement at each step).

    :param matrix: one metric of one method's runs
    :param reps: bootstrap resamples
    :param seed: seed of the resampling, so that a report is reproducible
    :return: the estimate
    """
    interval = bootstrap_iqm_curves(matrix.scores, reps, seed)
    return CurveEstimate(matrix.steps, iqm_per_step(matrix.scores), interval[0], interval[1])


def rliable_bootstrap_iqm(matrix: ScoreMatrix, reps: int = REPS, seed: int = BOOTSTRAP_SEED) -> CurveEstimate:
    """
    :func:`bootstrap_iqm` through rliable itself (one Python call per resample): the reference that
    the NumPy path is tested and benchmarked against.
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


def improvement_probabilities(scores_x: np.ndarray, scores_y: np.ndarray) -> np.ndarray:
    """
    rliable's ``metrics.probability_of_improvement`` for one task, over a batch of samples at once:
    the Mann-Whitney U statistic of X over Y divided by the number of pairs, i.e. the share of pairs in
    which X scores above Y, ties counting half.

    :param scores_x: (batch, runs of X)
    :param scores_y: (batch, runs of Y)
    :return: (batch,)
    """
    x, y = scores_x[:, :, None], scores_y[:, None, :]
    wins = (x > y).sum(axis=(1, 2)) + 0.5 * (x == y).sum(axis=(1, 2))
    return np.asarray(wins / (scores_x.shape[1] * scores_y.shape[1]), dtype=np.float64)


def probability_of_improvement(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int = PAIR_REPS, seed: int = BOOTSTRAP_SEED
) -> Interval:
    """
    rliable's probability of improvement: the chance that a run of X scores above a run of Y (ties
    count half), with a stratified-bootstrap CI, X's and Y's runs resampled independently.

    The resamples are rliable's (``StratifiedIndependentBootstrap``: per resample, X's run indices then
    Y's, from NumPy's global generator seeded with ``seed``), drawn from a ``RandomState(seed)`` of its
    own; the estimates of all resamples are computed at once (:func:`improvement_probabilities`).

    :param scores_x: X's final scores, one per run
    :param scores_y: Y's final scores, one per run
    :param reps: bootstrap resamples
    :param seed: seed of the resampling
    :return: the probability and its ``CONFIDENCE`` interval
    """
    x = np.asarray(scores_x, dtype=np.float64).ravel()
    y = np.asarray(scores_y, dtype=np.float64).ravel()
    random_state = np.random.RandomState(seed)
    x_indices = np.empty((reps, x.size), dtype=np.int64)
    y_indices = np.empty((reps, y.size), dtype=np.int64)
    for rep in range(reps):  # two small draws per resample, in rliable's order
        x_indices[rep] = random_state.randint(0, x.size, size=x.size)
        y_indices[rep] = random_state.randint(0, y.size, size=y.size)
    estimates = improvement_probabilities(x[x_indices], y[y_indices])
    low, high = _percentile_interval(estimates[:, None])[:, 0]
    point = improvement_probabilities(x[None, :], y[None, :])[0]
    return Interval(float(point), float(low), float(high))


def rliable_probability_of_improvement(
    scores_x: np.ndarray, scores_y: np.ndarray, reps: int = PAIR_REPS, seed: int = BOOTSTRAP_SEED
) -> Interval:
    """
    :func:`probability_of_improvement` through rliable itself (one Python call per resample): the
    reference that the NumPy path is tested and benchmarked against.
    """

    from rliable import metrics

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
    from rliable import library

    with _seeded_bootstrap(seed) as random_state:
        points, intervals = library.get_interval_estimates(
            {"estimate": scores},
            estimator,
            reps=reps,
            confidence_interval_size=CONFIDENCE,
            random_state=random_state,
        )
    return np.asarray(points["estimate"]), np.asarray(intervals["estimate"])
