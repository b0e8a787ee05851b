import math

import numpy as np
import pytest

from gtrxl_jax.suite.intervals import (
    interval_estimates,
    iqm,
    optimality_gap,
    stratified_bootstrap,
)


def test_iqm_and_optimality_gap_of_a_small_score_matrix():
    # 8 runs pooled: sorted 0 10 20 30 40 50 60 1000; the IQM drops two at each end.
    scores = {"a": [0.0, 10.0, 20.0, 30.0], "b": [40.0, 50.0, 60.0, 1000.0]}
    pooled = np.concatenate([scores["a"], scores["b"]])
    assert iqm(pooled) == pytest.approx((20 + 30 + 40 + 50) / 4)
    # Capped at 100: 0 10 20 30 40 50 60 100, mean 38.75.
    assert optimality_gap(pooled) == pytest.approx(100 - 38.75)
    estimates = interval_estimates(scores, reps=2000)
    assert estimates["iqm"][0] == pytest.approx(35.0)
    assert estimates["optimality_gap"][0] == pytest.approx(61.25)
    for point, low, high in estimates.values():
        assert low <= point <= high


def test_stratified_intervals_match_a_hand_computation():
    # Task a's two runs are resampled: (0, 0), (0, 100) or (100, 0), (100, 100) with
    # probability 1/4, 1/2, 1/4; task b's single run is always 50. The IQM of three runs
    # trims nothing: 50/3, 50 or 250/3, so the 2.5th and 97.5th percentiles are 50/3 and
    # 250/3. The optimality gap is 100 minus the same mean.
    estimates = interval_estimates({"a": [0.0, 100.0], "b": [50.0]}, reps=20_000)
    assert estimates["iqm"] == pytest.approx((50.0, 50 / 3, 250 / 3))
    assert estimates["optimality_gap"] == pytest.approx((50.0, 50 / 3, 250 / 3))


def test_strata_are_resampled_within_each_task():
    # One run per task: a stratified bootstrap has nothing to resample (a pooled one would).
    estimates = interval_estimates({"a": [10.0], "b": [30.0]}, reps=1000)
    assert estimates["iqm"] == pytest.approx((20.0, 20.0, 20.0))
    replicates = stratified_bootstrap({"a": [1.0, 2.0], "b": [7.0, 8.0, 9.0]}, reps=500)
    assert replicates.shape == (500, 5)
    assert set(np.unique(replicates[:, :2])) <= {1.0, 2.0}
    assert set(np.unique(replicates[:, 2:])) <= {7.0, 8.0, 9.0}


def test_missing_runs_are_left_out():
    with_nan = interval_estimates({"a": [10.0, math.nan], "b": [30.0], "c": [math.nan]})
    assert with_nan == interval_estimates({"a": [10.0], "b": [30.0]})
    empty = interval_estimates({"a": [math.nan]})
    assert all(math.isnan(v) for values in empty.values() for v in values)
