import math

import pytest

from gtrxl_jax.suite.scores import (
    aggregate,
    failed_to_learn,
    failure_share,
    mean_std,
    normalized_score,
    steps_to_score,
)


def test_normalized_score_puts_random_at_0_and_reference_at_100():
    assert normalized_score(0.5, random=0.5, reference=1.0) == 0.0
    assert normalized_score(1.0, random=0.5, reference=1.0) == 100.0
    assert normalized_score(0.75, random=0.5, reference=1.0) == pytest.approx(50.0)
    # Pong: random -20.7, human 14.6 -> a score of 0 is 100 * 20.7 / 35.3.
    assert normalized_score(0.0, random=-20.7, reference=14.6) == pytest.approx(58.640226)
    # Beyond the reference, and below random.
    assert normalized_score(1.25, random=0.5, reference=1.0) == pytest.approx(150.0)
    assert normalized_score(0.25, random=0.5, reference=1.0) == pytest.approx(-50.0)


def test_normalized_score_works_when_lower_is_better():
    # A reference below random (e.g. fewer steps is better) still maps random->0, ref->100.
    assert normalized_score(50.0, random=100.0, reference=0.0) == pytest.approx(50.0)


def test_normalized_score_of_missing_values_is_nan_and_a_flat_scale_raises():
    assert math.isnan(normalized_score(math.nan, 0.0, 1.0))
    assert math.isnan(normalized_score(None, 0.0, 1.0))
    with pytest.raises(ValueError, match="equals random"):
        normalized_score(1.0, 0.5, 0.5)


def test_aggregate_mean_median_capped_mean():
    # Scores 50, 100, 150, 300: mean 150, median 125, capped (50, 100, 100, 100) -> 87.5.
    agg = aggregate([50.0, 100.0, 150.0, 300.0])
    assert agg["mean"] == pytest.approx(150.0)
    assert agg["median"] == pytest.approx(125.0)
    assert agg["capped_mean"] == pytest.approx(87.5)
    assert agg["tasks"] == 4 and agg["missing"] == 0


def test_aggregate_caps_only_from_above_and_skips_missing_tasks():
    agg = aggregate([-20.0, 120.0, math.nan])
    assert agg["mean"] == pytest.approx(50.0)
    assert agg["capped_mean"] == pytest.approx(40.0)  # (-20 + 100) / 2: negatives stay
    assert agg["median"] == pytest.approx(50.0)
    assert agg["tasks"] == 2 and agg["missing"] == 1
    empty = aggregate([math.nan])
    assert math.isnan(empty["mean"]) and empty["missing"] == 1


def test_failed_to_learn_below_10_or_missing():
    assert failed_to_learn(9.99)
    assert not failed_to_learn(10.0)
    assert failed_to_learn(math.nan)
    assert failed_to_learn(None)
    assert failure_share([5.0, 50.0, math.nan, 100.0]) == pytest.approx(0.5)
    assert math.isnan(failure_share([]))


def test_mean_std_ignores_missing():
    assert mean_std([1.0, 3.0, math.nan, None]) == (2.0, 1.0)
    mean, std = mean_std([])
    assert math.isnan(mean) and math.isnan(std)


def test_steps_to_score_is_where_the_smoothed_curve_first_reaches_the_threshold():
    steps = [10, 20, 30, 40, 50, 60, 70]
    scores = [0, 100, 100, 100, 100, 100, 100]
    # Windows of 3: 66.7 at 30, then 100 from 40 on.
    assert steps_to_score(steps, scores, threshold=90, window=3) == 40
    assert steps_to_score(steps, scores, threshold=60, window=3) == 30
    assert steps_to_score(steps, scores, threshold=60, window=1) == 20


def test_steps_to_score_skips_one_lucky_record_and_records_without_a_score():
    steps = [1, 2, 3, 4, 5, 6]
    lucky = [0, 100, 0, 0, 0, 0]
    assert math.isnan(steps_to_score(steps, lucky, threshold=90, window=3))
    gaps = [100, math.nan, 100, math.nan, 100, 0]
    assert steps_to_score(steps, gaps, threshold=90, window=3) == 5


def test_steps_to_score_is_nan_for_a_curve_shorter_than_its_window_or_never_there():
    assert math.isnan(steps_to_score([1, 2], [100, 100], threshold=90, window=5))
    assert math.isnan(steps_to_score([], [], threshold=90, window=5))
    assert math.isnan(steps_to_score([1, 2, 3], [80, 85, 89], threshold=90, window=1))
