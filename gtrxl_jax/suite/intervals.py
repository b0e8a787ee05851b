"""Aggregates with interval estimates: IQM, optimality gap, stratified bootstrap intervals.

After rliable (Agarwal et al. 2021, "Deep Reinforcement Learning at the Edge of the
Statistical Precipice", https://arxiv.org/abs/2108.13264; google-research/rliable,
rliable/metrics.py and rliable/library.py), written here with numpy and scipy because
rliable 1.2.0 does not import beside the pinned pandas 3.1.1: its `arch` dependency
(rliable asks for arch >= 5.3.1, < 8) fails on import with pandas 3 (arch 7.2.0 calls
`pandas.util._decorators.deprecate_kwarg` with the pandas 2 signature), and arch 8.0.0,
outside rliable's range, rejects the `random_state=None` rliable passes it.

Scores are per-run normalised scores, grouped by task (a run = one task, one seed):

- IQM, the interquartile mean: the mean of the middle 50% of all runs pooled over tasks,
  `scipy.stats.trim_mean(scores, 0.25)` as rliable's `aggregate_iqm`.
- Optimality gap: how far the runs fall short of a target on average,
  gamma - mean(min(score, gamma)), with gamma = 100 (the reference) on this scale; rliable's
  `aggregate_optimality_gap` with gamma = 1 on its 0..1 scale.
- 95% stratified bootstrap intervals: each replicate resamples, for every task
  separately, that task's runs with replacement (rliable's `StratifiedBootstrap`), computes
  the statistic, and the interval is the 2.5th and 97.5th percentiles of the replicates
  (rliable's default "percentile" method).

Unlike rliable, tasks may have different numbers of runs (a crashed run is left out): the
strata are resampled at their own sizes.

    scores = {"TMaze-L4": [100.0, 98.0, 96.0], "TMaze-L16": [10.0, 80.0, 90.0]}
    interval_estimates(scores)   # {"iqm": (point, low, high), "optimality_gap": (...), ...}
"""

import math
from collections.abc import Callable, Mapping, Sequence

import numpy as np
from scipy import stats

OPTIMALITY_TARGET = 100.0
CONFIDENCE = 0.95
BOOTSTRAP_REPS = 50_000  # rliable's default


def iqm(scores: np.ndarray) -> np.ndarray:
    """Interquartile mean over the last axis.

    Args:
      scores: [..., R] run scores (all tasks' runs pooled on the last axis).

    Returns:
      [...]: the mean of each row's runs after dropping the lowest and the highest
      floor(R / 4) (scipy's trim_mean with proportiontocut 0.25).
    """
    return stats.trim_mean(scores, 0.25, axis=-1)


def optimality_gap(scores: np.ndarray, gamma: float = OPTIMALITY_TARGET) -> np.ndarray:
    """Optimality gap gamma - mean(min(scores, gamma)) on the last axis: [..., R] -> [...]."""
    return gamma - np.minimum(scores, gamma).mean(axis=-1)


STATISTICS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "iqm": iqm,
    "optimality_gap": optimality_gap,
}


def stratified_bootstrap(
    scores: Mapping[str, Sequence[float]], reps: int = BOOTSTRAP_REPS, seed: int = 0
) -> np.ndarray:
    """Replicates of the pooled run scores, each task's runs resampled within the task.

    Args:
      scores: {task: its runs' scores}; non-finite scores are left out, as are tasks with
        no finite score.
      reps: B, bootstrap replicates.
      seed: seeds the resampling.

    Returns:
      [B, R] float64, R the number of finite runs over all tasks (empty if none).
    """
    rng = np.random.default_rng(seed)
    columns = []
    for runs in _finite_runs(scores).values():
        columns.append(runs[rng.integers(0, runs.size, (reps, runs.size))])
    if not columns:
        return np.empty((reps, 0))
    return np.concatenate(columns, axis=1)


def interval_estimates(
    scores: Mapping[str, Sequence[float]],
    reps: int = BOOTSTRAP_REPS,
    confidence: float = CONFIDENCE,
    seed: int = 0,
) -> dict[str, tuple[float, float, float]]:
    """Each statistic of STATISTICS with its stratified bootstrap interval.

    Args:
      scores: {task: its runs' normalised scores}.
      reps: bootstrap replicates.
      confidence: the interval's coverage (0.95: the 2.5th .. 97.5th percentiles).
      seed: seeds the resampling.

    Returns:
      {name: (point estimate, low, high)}; NaNs when no run has a finite score.
    """
    runs = _finite_runs(scores)
    if not runs:
        return {name: (math.nan, math.nan, math.nan) for name in STATISTICS}
    pooled = np.concatenate(list(runs.values()))
    replicates = stratified_bootstrap(runs, reps, seed)
    tail = 100.0 * (1.0 - confidence) / 2.0
    estimates = {}
    for name, statistic in STATISTICS.items():
        low, high = np.percentile(statistic(replicates), [tail, 100.0 - tail])
        estimates[name] = (float(statistic(pooled)), float(low), float(high))
    return estimates


def _finite_runs(scores: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    finite = {}
    for task, values in scores.items():
        runs = np.asarray(values, np.float64)
        runs = runs[np.isfinite(runs)]
        if runs.size:
            finite[task] = runs
    return finite
