import pytest

from gtrxl_jax.suite.random_policy import main, measure_random_jax


def test_random_policy_on_a_jax_task_plays_one_episode_per_environment():
    result = measure_random_jax("TMaze-L2", episodes=400, seed=0)
    assert result["episodes"] == 400
    assert result["episode_length"] == 4.0  # L + 2 actions
    # The T-maze pays 1 for a right choice: return = success, about one half.
    assert result["episode_return"] == pytest.approx(result["success"])
    assert result["success"] == pytest.approx(0.5, abs=0.1)
    assert result["env_steps"] == 4 * 400


def test_an_unknown_task_is_a_usage_error_that_suggests_names(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["TMaze-L1x", "--jax"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "error: unknown JAX task 'TMaze-L1x'; did you mean 'TMaze-L10'" in err
    assert "Traceback" not in err
