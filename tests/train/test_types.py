import jax
import numpy as np

from gtrxl_jax.agent import Agent
from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train.types import concatenate

AGENT = Agent(jax.ShapeDtypeStruct((3,), np.float32), 2,
              GTrXLConfig(num_layers=1, d_model=8, num_heads=2, memory_len=4))


def test_concatenate_joins_time_major_and_batch_major_leaves_on_their_batch_axes():
    a, b = random_trajectory(AGENT, 5, 2, seed=0), random_trajectory(AGENT, 5, 3, seed=1)
    joined = concatenate([a, b])
    assert joined.length == 5 and joined.batch_size == 5
    np.testing.assert_array_equal(joined.inputs.observation[:, 2:], b.inputs.observation)
    np.testing.assert_array_equal(joined.behaviour_logits[:, :2], a.behaviour_logits)
    np.testing.assert_array_equal(joined.core_state.states[2:], b.core_state.states)
    assert joined.task_id.shape == (5,)


def test_concatenate_joins_core_states_on_the_device_they_are_on():
    a, b = random_trajectory(AGENT, 5, 2, seed=0), random_trajectory(AGENT, 5, 3, seed=1)
    on_device = [t.replace(core_state=jax.device_put(t.core_state)) for t in (a, b)]
    joined, host = concatenate(on_device), concatenate([a, b])
    for leaf, expected in zip(jax.tree.leaves(joined.core_state),
                              jax.tree.leaves(host.core_state), strict=True):
        assert isinstance(leaf, jax.Array)
        np.testing.assert_array_equal(leaf, expected)
    assert isinstance(joined.task_id, np.ndarray)  # host leaves stay on the host
