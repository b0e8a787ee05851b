import pytest

from gtrxl_jax.suite.minigrid_memory import look_back_actions, optimal_return


def test_look_back_costs():
    assert [look_back_actions(x) for x in range(1, 10)] == [0, 2, 2, 2, 4, 4, 4, 6, 8]


def test_optimal_return_by_hand_for_size_7():
    # Hallway end h = 4; start x0 = 1..4 -> actions (4+2+0, 3+2+2, 2+2+2, 1+2+2) = 6, 7, 6, 5,
    # mean 6; max_steps = 5 * 49 = 245.
    assert optimal_return(7) == pytest.approx(1 - 0.9 * 6 / 245)


def test_optimal_return_random_length_averages_over_hallways():
    # Size 9, random: h in {4, 5, 6}, each with x0 uniform in 1..h.
    def mean_actions(h):
        return sum((h + 1 - x) + 2 + look_back_actions(x) for x in range(1, h + 1)) / h

    expected = sum(1 - 0.9 * mean_actions(h) / 405 for h in (4, 5, 6)) / 3
    assert optimal_return(9, random_length=True) == pytest.approx(expected)


def test_optimal_return_rejects_impossible_sizes():
    with pytest.raises(ValueError):
        optimal_return(8)
