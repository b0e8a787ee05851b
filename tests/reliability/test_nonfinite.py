"""Non-finite losses, gradients and parameters: the update is skipped and counted, and after
learner.max_nonfinite_updates in a row the run stops with a message that says where the NaN
appeared (the loss, the gradients or the step; which inputs; which parameters), leaving
checkpoints that hold only finite parameters, the last good ones."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from gtrxl_jax.agent import Agent
from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.config import LossConfig
from gtrxl_jax.losses import PopArtState
from gtrxl_jax.nn import FeedForwardConfig
from gtrxl_jax.train import builder, loop
from gtrxl_jax.train.learning import Learning, NonFiniteError
from gtrxl_jax.train.nonfinite import NonFiniteStreak
from gtrxl_jax.train.placement import Learner, first_replica
from tests.reliability.helpers import (
    checkpoint_updates,
    quick_config,
    read_metrics,
    use_faulty_envs,
)
from tests.train.helpers import tiny_config

LONG_RUN = "learner.total_env_steps=100000"


def saved_state(log_dir, update) -> dict:
    """A checkpoint's learner state as saved (nested dicts of arrays)."""
    return ocp.StandardCheckpointer().restore(log_dir / "checkpoints" / str(update) / "state")


def all_finite(tree) -> bool:
    return all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(tree))


def test_nan_rewards_stop_the_run_naming_the_loss_and_the_rewards(tmp_path, monkeypatch):
    use_faulty_envs(monkeypatch, fault="nan_reward", after=4 * 8)
    with pytest.raises(NonFiniteError) as raised:
        loop.train(quick_config(tmp_path, LONG_RUN, "learner.max_nonfinite_updates=3",
                                "run.checkpoint_interval_updates=1", "run.keep_checkpoints=20"))
    message = str(raised.value)
    assert "3 updates in a row" in message and "because the loss was not finite" in message
    assert "non-finite inputs in the last batch: inputs.prev_reward (the rewards): " in message

    records = read_metrics(tmp_path)
    skipped = [r["update"] for r in records if r["nonfinite_loss"] == 1.0]
    last = records[-1]["update"]
    assert skipped == [last - 2, last - 1, last], "the skipped updates are counted in metrics"
    final, last_good = saved_state(tmp_path, last), saved_state(tmp_path, last - 3)
    assert checkpoint_updates(tmp_path)[-1] == last
    assert (int(final["nonfinite_updates"]), int(last_good["nonfinite_updates"])) == (3, 0)
    assert all_finite(final["params"])
    for a, b in zip(jax.tree.leaves(final["params"]), jax.tree.leaves(last_good["params"]),
                    strict=True):
        np.testing.assert_array_equal(a, b)  # the final checkpoint holds the last good update


@jax.custom_vjp
def nan_gradient(x):
    """The identity, whose gradient is NaN."""
    return x


nan_gradient.defvjp(lambda x: (x, None), lambda _, g: (jnp.full_like(g, jnp.nan),))


class NanHeadGradientAgent(Agent):
    """An agent whose head's parameters get NaN gradients while its loss stays finite."""

    def unroll(self, params, inputs, state, segment_len=None):
        params = {**params, "head": jax.tree.map(nan_gradient, params["head"])}
        return super().unroll(params, inputs, state, segment_len)


def use_nan_head_gradients(monkeypatch) -> None:
    """Every agent the builder makes is a NanHeadGradientAgent."""
    make_agent = builder.make_agent

    def nan_agent(*args, **kwargs):
        agent = make_agent(*args, **kwargs)
        return NanHeadGradientAgent(**{f.name: getattr(agent, f.name)
                                       for f in dataclasses.fields(agent)})

    monkeypatch.setattr(builder, "make_agent", nan_agent)


@pytest.mark.parametrize("loss", [[], ["loss.name=ppo", "loss.ppo_minibatches=1"]],
                         ids=["vtrace", "ppo"])
def test_nan_gradients_stop_the_run_naming_the_parameters(loss, tmp_path, monkeypatch):
    use_nan_head_gradients(monkeypatch)
    with pytest.raises(NonFiniteError) as raised:
        loop.train(quick_config(tmp_path, LONG_RUN, "learner.max_nonfinite_updates=2",
                                "agent.core=feedforward", *loss))  # compiles fastest
    message = str(raised.value)
    assert "2 updates in a row (up to update 2)" in message
    assert "because the gradients were not finite (the loss was finite)" in message
    assert "the last batch's inputs were all finite" in message
    assert "non-finite gradients of " in message and "['head']['params']" in message
    assert "['embedding']" not in message
    assert [r["nonfinite_grads"] for r in read_metrics(tmp_path)] == [1.0, 1.0]
    final = saved_state(tmp_path, 2)
    assert int(final["nonfinite_updates"]) == 2 and all_finite(final["params"])


@pytest.mark.parametrize("loop_name", ["actor_learner", "on_device"])
def test_a_resumed_run_goes_on_with_its_streak_of_skipped_updates(loop_name, tmp_path,
                                                                  monkeypatch):
    """The checkpoint holds the streak: a run stopped after 2 skipped updates, of 3 allowed
    in a row, stops at its first update once resumed, as the uninterrupted run would."""
    use_nan_head_gradients(monkeypatch)
    settings = (f"learner.loop={loop_name}", "agent.core=feedforward",
                "learner.max_nonfinite_updates=3")
    first = loop.train(quick_config(tmp_path, *settings, "learner.total_env_steps=64"))
    assert first.update == 2  # both skipped, within the limit
    with pytest.raises(NonFiniteError) as raised:
        loop.train(quick_config(tmp_path, *settings, LONG_RUN, "run.resume=true"))
    assert "3 updates in a row (up to update 3)" in str(raised.value)


def test_seeds_trained_together_stop_naming_the_run_whose_updates_failed(tmp_path,
                                                                       monkeypatch):
    """One program trains the seeds, so a failing one stops all: the message says whose."""
    use_nan_head_gradients(monkeypatch)
    configs = [tiny_config(tmp_path / f"seed{seed}", "learner.loop=on_device", LONG_RUN,
                           "agent.core=feedforward", "learner.max_nonfinite_updates=2",
                           "run.checkpoint_interval_updates=100",  # update 3 is in flight
                           f"run.seed={seed}") for seed in (0, 1)]
    with pytest.raises(NonFiniteError) as raised:
        loop.train_seeds(configs)
    message = str(raised.value)
    assert message.startswith(f"{tmp_path / 'seed0'}: Stopping: 2 updates in a row"), message
    assert "because the gradients were not finite" in message
    for config in configs:  # every dispatched update is read and logged under its number,
        # the one in flight included, in every run (the loop stopped at seed 0's)
        records = read_metrics(config.run.log_dir)
        assert [(r["update"], r["nonfinite_grads"]) for r in records] == [
            (1, 1.0), (2, 1.0), (3, 1.0)]


@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")
def test_a_step_to_non_finite_parameters_is_skipped_and_named():
    agent = Agent(jax.ShapeDtypeStruct((3,), np.float32), 2, FeedForwardConfig(d_model=8))
    learner = Learner(Learning(agent, LossConfig(), optax.sgd(1e39)), jax.local_devices()[:1],
                      trajectory_len=4)  # a learning rate of 1e39 overflows float32
    state = learner.init_state(jax.random.PRNGKey(0))
    new_state, metrics = learner.update(learner.replicate(state), random_trajectory(agent, 4, 2))
    metrics = jax.device_get(first_replica(metrics))
    assert (metrics["nonfinite_loss"], metrics["nonfinite_grads"],
            metrics["nonfinite_params"]) == (0.0, 0.0, 1.0)
    assert metrics["update_norm"] == 0.0  # the parameters kept, not the step refused
    new_state = learner.unreplicate(new_state)
    assert int(new_state.nonfinite_updates) == 1
    for a, b in zip(jax.tree.leaves(new_state.params), jax.tree.leaves(state.params), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(NonFiniteError, match="the updated parameters or PopArt statistics "
                                             "were not finite"):
        NonFiniteStreak(limit=1).check(metrics, 1)


def test_popart_statistics_that_overflow_skip_the_update():
    """Returns of 3e19 square to infinity: the rescaled head stays finite, but an infinite
    second moment would make the next update's scale NaN (inf - inf), and every update
    after it non-finite."""
    agent = Agent(jax.ShapeDtypeStruct((3,), np.float32), 2, FeedForwardConfig(d_model=8))
    learning = Learning(agent, LossConfig(popart=True), optax.sgd(1e-3))
    state = learning.init_state(jax.random.PRNGKey(0))
    # Returns spread over 10 so far: the loss on the targets normalised by it stays finite.
    state = state.replace(popart=PopArtState(shift=jnp.zeros(1), scale=jnp.full(1, 10.0),
                                             second_moment=jnp.full(1, 100.0)))
    batch = random_trajectory(agent, 4, 2)
    rewards = jnp.full_like(batch.inputs.prev_reward, 3e19)  # step s's reward is s+1's input
    batch = batch.replace(inputs=batch.inputs.replace(prev_reward=rewards))
    new_state, metrics = jax.jit(learning.update)(state, batch)
    assert (float(metrics["nonfinite_loss"]), float(metrics["nonfinite_grads"]),
            float(metrics["nonfinite_params"])) == (0.0, 0.0, 1.0)
    assert int(new_state.nonfinite_updates) == 1
    for a, b in zip(jax.tree.leaves((new_state.params, new_state.popart)),
                    jax.tree.leaves((state.params, state.popart)), strict=True):
        np.testing.assert_array_equal(a, b)
