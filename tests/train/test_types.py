import jax
import numpy as np
import pytest

from gtrxl_jax.agent import Agent
from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train.placement import split_for_devices
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


def test_split_for_devices_puts_equal_parts_on_a_leading_axis():
    batch = random_trajectory(AGENT, 5, 4)
    split = split_for_devices(batch, 2)
    assert split.actions.shape == (2, 6, 2)
    assert split.core_state.valid.shape == (2, 2, 4)
    np.testing.assert_array_equal(split.actions[1], batch.actions[:, 2:])
    np.testing.assert_array_equal(split.param_version[1], batch.param_version[2:])
    np.testing.assert_array_equal(split.core_state.states[1], batch.core_state.states[2:])
    # Views, not copies: the learner's transfer to its devices is the batch's one copy.
    assert np.shares_memory(split.inputs.observation, batch.inputs.observation)
    assert np.shares_memory(split.core_state.states, batch.core_state.states)
    with pytest.raises(ValueError, match="cannot be split evenly over 3"):
        split_for_devices(batch, 3)
