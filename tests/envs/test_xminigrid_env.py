import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.envs.xminigrid_env import encode_view
from tests.envs.jax_helpers import jax_env, random_rollout


def test_the_view_is_one_hot_tile_and_colour_per_cell():
    view = jnp.zeros((3, 3, 2), jnp.uint8).at[1, 2].set(jnp.array([7, 2], jnp.uint8))  # green key
    encoded = np.asarray(encode_view(view)).reshape(3, 3, 25)
    assert encoded.dtype == np.float32 and (encoded.sum(axis=2) == 2).all()
    assert encoded[1, 2, 7] == 1 and encoded[1, 2, 13 + 2] == 1
    assert encoded[0, 0, 0] == 1 and encoded[0, 0, 13] == 1  # empty tile, no colour


def test_memory_sets_the_time_limit_from_its_size_and_reports_success():
    env = jax_env("MiniGrid-MemoryS7")
    assert env.max_steps == 5 * 7**2 and env.num_actions == 6
    assert env.observation.shape == (225,) and env.has_success
    _, _, ts = random_rollout("MiniGrid-MemoryS7", 16, 600, seed=1)
    terminated = ts.last & (ts.discount == 0)
    truncated = ts.last & (ts.discount == 1)
    assert terminated.any()
    np.testing.assert_array_equal(ts.success, terminated & (ts.reward > 0))
    assert (ts.reward[ts.success] > 0.1).all() and (ts.reward[~ts.success] == 0).all()
    # A truncated episode lasts max_steps actions.
    for env_id in np.flatnonzero(truncated.any(axis=0)):
        starts = np.flatnonzero(ts.first[:, env_id])
        ends = np.flatnonzero(truncated[:, env_id])
        assert any(end - start == env.max_steps for start in starts for end in ends)
    assert jax.tree.leaves(ts.observation)[0].shape == (601, 16, 225)
