"""The JAX T-maze equals the numpy TMaze step for step, given the same seed and actions."""

import jax
import numpy as np
import pytest

from gtrxl_jax.envs import TMaze
from tests.envs.jax_helpers import play


def host_play(corridor_length, seed, num_envs, actions):
    """Step the numpy TMaze with actions [T, N]; timesteps [T + 1, N] with a success field."""
    env = TMaze(corridor_length, num_envs, seed=seed)
    rows = [(env.reset(), np.zeros(num_envs, bool))]
    for step_actions in actions:
        timestep = env.step(step_actions)
        success = np.zeros(num_envs, bool)
        for episode in env.pop_episodes():
            success[episode.env_id] = episode.success
        rows.append((timestep, success))
    stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *(ts for ts, _ in rows))
    return stacked, np.stack([success for _, success in rows])


@pytest.mark.parametrize("corridor_length, seed, num_envs", [(0, 0, 1), (2, 1, 3), (5, 7, 8)])
def test_jax_tmaze_equals_the_numpy_tmaze(corridor_length, seed, num_envs):
    num_steps = 4 * (corridor_length + 3) + 1  # four episodes and a bit
    actions = np.random.default_rng(seed).integers(0, 2, size=(num_steps, num_envs), dtype=np.int32)
    expected, expected_success = host_play(corridor_length, seed, num_envs, actions)
    steps = iter(actions)
    got = play(f"TMaze-L{corridor_length}", lambda ts: next(steps), num_envs, num_steps, seed)
    for field in ("observation", "reward", "discount", "first", "last"):
        np.testing.assert_array_equal(getattr(got, field), getattr(expected, field),
                                      err_msg=field)
    np.testing.assert_array_equal(got.success, expected_success)
    assert expected.last.sum() == 4 * num_envs


def test_a_policy_that_remembers_the_cue_always_succeeds():
    cue = np.zeros(4, np.int32)

    def remember_cue(timestep):
        cue[:] = np.where(timestep.first, timestep.observation[:, 1] > 0, cue)
        return cue

    got = play("TMaze-L4", remember_cue, num_envs=4, num_steps=7 * 5)
    assert got.last.sum() == 4 * 5 and got.success[got.last].all()
    assert (got.reward[got.last] == 1).all()
