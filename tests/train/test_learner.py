"""The pmapped learner: device-count independence, identical replicas, non-finite skipping."""

import jax
import numpy as np
import optax
import pytest
from jax.sharding import PartitionSpec

from gtrxl_jax.agent import Agent
from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.config import LossConfig
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train import placement
from gtrxl_jax.train.learning import Learning, NonFiniteError
from gtrxl_jax.train.nonfinite import NonFiniteStreak
from gtrxl_jax.train.placement import Learner, first_replica

T, B = 6, 4
AGENT = Agent(jax.ShapeDtypeStruct((3,), np.float32), 2,
              GTrXLConfig(num_layers=1, d_model=16, num_heads=2, memory_len=4))


def make_learner(num_devices):
    return Learner(Learning(AGENT, LossConfig(popart=True), optax.sgd(0.1), segment_len=3),
                   jax.local_devices()[:num_devices], trajectory_len=T)


@pytest.fixture(scope="module")
def one_device():
    return make_learner(1)


@pytest.fixture(scope="module")
def two_devices():  # only for tests marked needs_devices(2)
    return make_learner(2)


def assert_trees_close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=1e-5)


@pytest.mark.needs_devices(2)
def test_two_devices_compute_the_single_device_update(one_device, two_devices):
    one, two = one_device, two_devices
    state = one.init_state(jax.random.PRNGKey(0))
    batch = random_trajectory(AGENT, T, B)
    batch.inputs.first[1:3, 0] = True  # the devices' halves get unequal numbers of transitions
    state_1, metrics_1 = one.update(one.replicate(state), batch)
    state_2, metrics_2 = two.update(two.replicate(state), batch)
    assert_trees_close(one.unreplicate(state_1), two.unreplicate(state_2), atol=1e-6)
    assert_trees_close(first_replica(metrics_1), first_replica(metrics_2), atol=1e-6)
    for leaf in jax.tree.leaves(state_2):  # every device holds the same copy, bit for bit
        copies = [np.asarray(shard.data) for shard in leaf.addressable_shards]
        np.testing.assert_array_equal(copies[0], copies[1])
    updated = one.unreplicate(state_1)
    assert int(updated.update) == 1 and int(updated.nonfinite_updates) == 0
    assert float(updated.popart.shift[0]) != 0.0  # PopArt statistics moved


@pytest.mark.needs_devices(2)
def test_a_core_state_on_an_actor_device_gives_the_host_batch_update(two_devices):
    # An actor thread's trajectory keeps its core state on the device it acted on; the
    # learner takes it from there (device to device) and computes the same update.
    learner = two_devices
    state = learner.init_state(jax.random.PRNGKey(0))
    batch = random_trajectory(AGENT, T, B)
    on_device = batch.replace(core_state=jax.device_put(batch.core_state, jax.devices()[1]))
    from_host, _ = learner.update(learner.replicate(state), batch)
    from_device, _ = learner.update(learner.replicate(state), on_device)
    assert_trees_close(learner.unreplicate(from_host), learner.unreplicate(from_device), atol=0)


def test_a_non_finite_loss_skips_the_update_and_counts_it(one_device):
    learner = one_device
    state = learner.init_state(jax.random.PRNGKey(0))
    batch = random_trajectory(AGENT, T, B)
    batch.inputs.prev_reward[2, 1] = np.nan
    new_state, metrics = learner.update(learner.replicate(state), batch)
    new_state, metrics = learner.unreplicate(new_state), jax.device_get(first_replica(metrics))
    assert metrics["nonfinite_loss"] == 1.0
    assert int(new_state.update) == 1 and int(new_state.nonfinite_updates) == 1
    assert_trees_close(new_state.params, state.params, atol=0)
    assert_trees_close(new_state.opt_state, state.opt_state, atol=0)
    assert_trees_close(new_state.popart, state.popart, atol=0)


def test_published_params_survive_the_donation_of_later_updates(one_device):
    learner = one_device
    state = learner.replicate(learner.init_state(jax.random.PRNGKey(0)))
    batch = random_trajectory(AGENT, T, B)
    state, _ = learner.update(state, batch)
    published = first_replica(state.params)
    expected = jax.device_get(published)
    for _ in range(2):
        state, _ = learner.update(state, batch)  # donates the buffers of `state`
    assert_trees_close(jax.device_get(published), expected, atol=0)


def test_too_many_non_finite_updates_in_a_row_stop_the_run_naming_where():
    streak = NonFiniteStreak(limit=2)
    good = {"nonfinite_loss": 0.0, "nonfinite_grads": 0.0}
    bad_grads = {"nonfinite_loss": 0.0, "nonfinite_grads": 1.0}
    streak.check(bad_grads, 1)
    streak.check(good, 2)  # a good update resets the streak
    streak.check(bad_grads, 3)
    with pytest.raises(NonFiniteError, match="2 updates in a row .* the gradients"):
        streak.check(bad_grads, 4)
    with pytest.raises(NonFiniteError, match="the loss was not finite"):
        NonFiniteStreak(limit=1).check({"nonfinite_loss": 1.0, "nonfinite_grads": 1.0}, 1)


def test_an_agent_without_a_value_output_per_task_is_refused():
    with pytest.raises(ValueError, match="agent has 1 value output.*num_tasks=2"):
        Learning(AGENT, LossConfig(popart=True), optax.sgd(0.1), num_tasks=2)


def test_task_names_must_name_each_task_once():
    with pytest.raises(ValueError, match=r"task_names \('a', 'b'\) must name each of the "
                                         "num_tasks=1 tasks"):
        Learning(AGENT, LossConfig(popart=True), optax.sgd(0.1), task_names=("a", "b"))


@pytest.mark.needs_devices(2)
def test_a_batch_splits_its_rows_over_the_devices_and_must_split_evenly(two_devices):
    batch = random_trajectory(AGENT, T, B)
    specs = placement.batch_specs(batch)
    assert specs.actions == PartitionSpec(None, placement.DATA_AXIS)  # [T+1, B]: rows on axis 1
    assert specs.core_state.states == PartitionSpec(placement.DATA_AXIS)  # [B, ...]
    with pytest.raises(ValueError, match="cannot be split evenly over 2"):
        two_devices.update(two_devices.replicate(two_devices.init_state(jax.random.PRNGKey(0))),
                           random_trajectory(AGENT, T, 3))


def test_lower_gives_the_update_program_for_profiles(one_device):
    learner = one_device
    state = learner.replicate(learner.init_state(jax.random.PRNGKey(0)))
    compiled = learner.lower(state, random_trajectory(AGENT, T, B)).compile()
    assert "ENTRY" in compiled.as_text()
    assert compiled.cost_analysis()["flops"] > 0
