"""The actor: trajectories that the learner's unroll reproduces exactly, under changing params."""

import threading

import jax
import numpy as np
import pytest

from gtrxl_jax.agent import Agent
from gtrxl_jax.envs import TMaze
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train.actor import Actor, EnvGroup, required_version
from gtrxl_jax.train.handoff import ParamsStore, TrajectoryQueue

T = 5


def test_required_version_lags_the_learner_by_one_update():
    # trajectory j feeds update j+1 and is acted by the parameters of update j-1
    assert [required_version(j, 0, 1) for j in range(5)] == [0, 0, 1, 2, 3]
    # two trajectories per update; a run resumed at update 10
    assert [required_version(j, 10, 2) for j in range(6)] == [10, 10, 10, 10, 11, 11]


class FailingTMaze(TMaze):
    def __init__(self, *args, fail_after: int, **kwargs):
        super().__init__(*args, **kwargs)
        self._calls_left = fail_after

    def _recv(self):
        self._calls_left -= 1
        if self._calls_left < 0:
            raise OSError("environment crashed")
        return super()._recv()


def make_actor(agent, groups, store, queue, stop):
    return Actor("actor 0", agent, groups, trajectory_len=T, params_store=store,
                 trajectory_queue=queue, stop=stop, key=jax.random.PRNGKey(0),
                 device=jax.local_devices()[0], reproducible=True, start_update=0,
                 trajectories_per_update=1, timeout_s=60.0)


@pytest.fixture(scope="module")
def agent():
    # memory_len 3 < episode length 4: the sliding window and the episode mask both matter.
    return Agent(jax.ShapeDtypeStruct((4,), np.float32), 2,
                 GTrXLConfig(num_layers=1, d_model=16, num_heads=2, memory_len=3))


def test_trajectories_replay_exactly_under_the_learner_unroll(agent):
    params = [agent.init(jax.random.PRNGKey(k)) for k in range(4)]
    store, queue, stop = ParamsStore(), TrajectoryQueue(4, "actor 0"), threading.Event()
    groups = [EnvGroup(TMaze(1, 2, seed=g), task_id=0) for g in range(2)]
    actor = make_actor(agent, groups, store, queue, stop)
    actor.start()
    trajectories = []
    for k in range(4):
        # Trajectory k leaves once its last step T (step 0 of trajectory k+1) is acted, with
        # the parameters of trajectory k+1: version k.
        store.publish(k, params[k])  # the actor refreshes its cache on each switch
        trajectory, episodes = queue.get(stop, 120.0)[0]
        trajectories.append(trajectory)
        assert all(task == "TMaze-L1" for task, _ in episodes)
    stop.set()
    actor.join(10.0)
    assert actor.error is None and not actor.is_alive()

    assert [int(t.param_version[0]) for t in trajectories] == [0, 0, 1, 2]
    for leaf in jax.tree.leaves([t.core_state for t in trajectories]):  # never via the host
        assert isinstance(leaf, jax.Array) and leaf.devices() == {jax.local_devices()[0]}
    unroll = jax.jit(agent.unroll)
    for k, trajectory in enumerate(trajectories):
        assert trajectory.actions.shape == (T + 1, 4)
        inputs = jax.tree.map(lambda x: x[:T], trajectory.inputs)
        outputs, state = unroll(params[trajectory.param_version[0]], inputs,
                                trajectory.core_state)
        np.testing.assert_allclose(outputs.logits, trajectory.behaviour_logits[:T], atol=1e-5)
        if k + 1 < len(trajectories):
            following = trajectories[k + 1]
            for a, b in zip(jax.tree.leaves(jax.device_get(state.without_cache())),
                            jax.tree.leaves(following.core_state), strict=True):
                np.testing.assert_allclose(a, b, atol=1e-5)
            for a, b in zip(jax.tree.leaves((trajectory.inputs, trajectory.actions)),
                            jax.tree.leaves((following.inputs, following.actions)), strict=True):
                np.testing.assert_array_equal(a[T], b[0])  # one step of overlap
    assert any(t.inputs.first[1:].any() for t in trajectories)  # episodes crossed boundaries
    # Four trajectories of 4 envs took at least 3T + T + 1 steps each env; before it sees the
    # stop, the actor may step on into the next trajectory (its parameters, version 3, are
    # published) but cannot finish it (that needs version 4).
    at_least = 4 * (3 * T + T + 1)
    assert at_least <= actor.stats.env_steps < at_least + 4 * T
    assert actor.stats.trajectories == 4


def test_an_environment_error_ends_the_actor_and_is_kept(agent):
    store, queue, stop = ParamsStore(), TrajectoryQueue(4, "actor 0"), threading.Event()
    store.publish(0, agent.init(jax.random.PRNGKey(0)))
    actor = make_actor(agent, [EnvGroup(FailingTMaze(1, 2, fail_after=7), task_id=0)], store,
                       queue, stop)
    actor.start()
    actor.join(60.0)
    assert isinstance(actor.error, OSError) and stop.is_set()
