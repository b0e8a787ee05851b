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
