"""Normalised scores and their aggregates, as DMLab-30 and Atari report them.

A task's normalised score puts a random policy at 0 and the task's reference (a human or
published score where one exists, else the task's maximum) at 100:

    score = 100 * (agent - random) / (reference - random)

Across tasks the suite reports the mean, the median, and the capped mean, in which each
task's score is first capped at 100 (DMLab-30's "capped mean", Espeholt et al. 2018,
https://arxiv.org/abs/1802.01561, and the GTrXL paper's second column), so that no task
where the agent beats the reference can hide tasks it fails.

A run *failed to learn* when its final normalised score is below FAILED_TO_LEARN_BELOW
(10: it closed less than a tenth of the gap between random and reference) or is missing
(the run crashed or its evaluation returned no finite value).

A run's *steps to 90* (`steps_to_score`) measure how fast it learned: the env steps at
which its training curve's score, smoothed over a few records, first reaches 90.
"""

import math
from collections.abc import Iterable, Sequence

import numpy as np

CAP = 100.0
FAILED_TO_LEARN_BELOW = 10.0
# Sample efficiency: the training curve's score to reach (90: 90% of the way from a random
# policy to the reference, e.g. success 0.95 where random is 0.5), averaged over this many
# records of the curve.
TRAINING_THRESHOLD = 90.0
SMOOTHING_RECORDS = 5


def normalized_score(value: float, random: float, reference: float) -> float:
    """Map a raw score to the 0 (random) .. 100 (reference) scale.

    Args:
      value: the agent's score (mean episode return, or success rate).
      random: a uniformly random policy's score on the same task.
      reference: the human, published or maximum score on the same task.

    Returns:
      100 * (value - random) / (reference - random); NaN if value is NaN or None.

    Raises:
      ValueError: reference == random (the scale is undefined).
    """
    if reference == random:
        raise ValueError(f"reference ({reference}) equals random ({random}): no scale to use")
    if value is None or not math.isfinite(value):
        return math.nan
    return 100.0 * (value - random) / (reference - random)


def steps_to_score(
    env_steps: Sequence[float], scores: Sequence[float], threshold: float = TRAINING_THRESHOLD,
    window: int = SMOOTHING_RECORDS,
) -> float:
    """The env steps at which a training curve's smoothed score first reaches `threshold`.

    The curve's score at a record is the mean over that record and the `window - 1` before it
    (records without a score, NaN, left out first), so one lucky interval does not count.

    Args:
      env_steps: [N] env steps of each record.
      scores: [N] normalised training score of each record (NaN: no episode ended).
      threshold: the score to reach.
      window: records averaged.

    Returns:
      The env steps of the first record whose smoothed score is >= threshold; NaN if none.
    """
    steps = np.asarray(env_steps, np.float64)
    values = np.asarray(scores, np.float64)
    scored = np.isfinite(values)
    steps, values = steps[scored], values[scored]
    if values.size < window:
        return math.nan
    smoothed = np.convolve(values, np.ones(window) / window, mode="valid")
    reached = np.flatnonzero(smoothed >= threshold)
    return float(steps[reached[0] + window - 1]) if reached.size else math.nan


def aggregate(scores: Iterable[float]) -> dict[str, float]:
    """Mean, median and capped mean of per-task normalised scores.

    Args:
      scores: one normalised score per task (already averaged over seeds). NaN scores
        (tasks with no result) are left out and counted in "missing".

    Returns:
      {"mean", "median", "capped_mean", "tasks", "missing"}; NaN statistics when no task
      has a finite score.
    """
    values = np.asarray(list(scores), dtype=np.float64)
    finite = values[np.isfinite(values)]
    missing = int(values.size - finite.size)
    if finite.size == 0:
        return {
            "mean": math.nan,
            "median": math.nan,
            "capped_mean": math.nan,
            "tasks": 0,
            "missing": missing,
        }
    return {
        "mean": float(finite.mean()),
        "median": float(np.median(finite)),
        "capped_mean": float(np.minimum(finite, CAP).mean()),
        "tasks": int(finite.size),
        "missing": missing,
    }


def failed_to_learn(score: float | None) -> bool:
    """Tell whether a run's final normalised score counts as a failure to learn.

    True when the score is below FAILED_TO_LEARN_BELOW, or missing / not finite.
    """
    return score is None or not math.isfinite(score) or score < FAILED_TO_LEARN_BELOW


def failure_share(scores: Iterable[float | None]) -> float:
    """The share (0..1) of runs that failed to learn; NaN for no runs."""
    flags = [failed_to_learn(s) for s in scores]
    return float(np.mean(flags)) if flags else math.nan


def mean_std(values: Iterable[float | None]) -> tuple[float, float]:
    """Mean and population standard deviation over the finite values (NaN, NaN if none)."""
    finite = np.array([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if finite.size == 0:
        return math.nan, math.nan
    return float(finite.mean()), float(finite.std())
