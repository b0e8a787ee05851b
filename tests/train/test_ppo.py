"""PPO: GAE against a NumPy reference, the clipped surrogate, the update on 1 or 2 devices,
and a short run on device that learns."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gtrxl_jax import losses
from gtrxl_jax.agent import Agent
from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.config import LossConfig
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train.builder import check_config, make_agent, make_learning
from gtrxl_jax.train.learning import Learning, transitions
from gtrxl_jax.train.placement import Learner, first_replica
from tests.train.helpers import TINY_AGENT, tiny_config, train_as_a_user

T, B = 6, 4
AGENT = Agent(jax.ShapeDtypeStruct((3,), np.float32), 2,
              GTrXLConfig(num_layers=1, d_model=16, num_heads=2, memory_len=4))
PPO = LossConfig(name="ppo", ppo_epochs=2, ppo_minibatches=2)


def reference_gae(values, rewards, discounts, mask, lam):
    """GAE by its definition, one column at a time; masked transitions are null."""
    T = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    for b in range(rewards.shape[1]):
        running = 0.0
        for t in reversed(range(T)):
            if not mask[t, b]:
                running = 0.0
                continue
            delta = rewards[t, b] + discounts[t, b] * values[t + 1, b] - values[t, b]
            running = delta + discounts[t, b] * lam * running
            advantages[t, b] = running
    return advantages


def test_gae_targets_are_gae_and_the_value_targets_its_lambda_returns():
    rng = np.random.default_rng(0)
    values = rng.normal(size=(T + 1, B)).astype(np.float32)
    rewards = rng.normal(size=(T, B)).astype(np.float32)
    discounts = (0.9 * (rng.random((T, B)) > 0.2)).astype(np.float32)
    mask = rng.random((T, B)) > 0.15
    targets = losses.gae_targets(jnp.asarray(values), jnp.asarray(rewards),
                                 jnp.asarray(discounts), jnp.asarray(mask), lambda_=0.9)
    expected = reference_gae(values, rewards, discounts, mask, 0.9)
    np.testing.assert_allclose(targets.pg_advantages, expected, atol=1e-5)
    np.testing.assert_allclose(targets.vs, np.where(mask, expected + values[:-1], values[:-1]),
                               atol=1e-5)


def test_the_surrogate_is_the_advantage_at_ratio_one_and_clips_past_epsilon():
    rng = np.random.default_rng(1)
    logits = jnp.asarray(rng.normal(size=(T, B, 3)), jnp.float32)
    actions = jnp.asarray(rng.integers(0, 3, (T, B)), jnp.int32)
    advantages = jnp.asarray(rng.normal(size=(T, B)), jnp.float32)
    targets = losses.VTraceTargets(vs=jnp.zeros((T, B)), pg_advantages=advantages)
    values = jnp.zeros((T + 1, B))
    mask = jnp.ones((T, B), bool)
    _, metrics = losses.ppo_loss(logits, values, actions, logits, targets, mask,
                                 entropy_cost=0.0)
    np.testing.assert_allclose(metrics["pg_loss"], -advantages.mean(), rtol=1e-5)
    assert metrics["ratio_mean"] == pytest.approx(1.0) and metrics["clipped_fraction"] == 0.0

    def pg_grad(target_logits):
        return jax.grad(lambda lg: losses.ppo_loss(lg, values, actions, logits, targets, mask,
                                                   clip=0.2)[1]["pg_loss"])(target_logits)

    # Far outside the clip range, in the direction the advantage rewards: no gradient.
    taken = jax.nn.one_hot(actions, 3) * 5.0 * jnp.sign(advantages)[..., None]
    assert jnp.abs(pg_grad(logits + taken)).max() < 1e-6
    assert jnp.abs(pg_grad(logits)).max() > 1e-3


def ppo_learner(num_devices, loss=PPO):
    # SGD, as the V-trace learner's tests: Adam's division by tiny second moments would
    # blow the devices' round-off up past the comparison's tolerance.
    return Learner(Learning(AGENT, loss, optax.sgd(0.1), segment_len=3),
                   jax.local_devices()[:num_devices], trajectory_len=T)


@pytest.mark.needs_devices(2)
def test_a_ppo_update_of_whole_batch_steps_is_the_same_on_one_or_two_devices():
    """Advantages are normalised over the whole batch, each step's loss is its mean and
    PopArt's statistics average over the devices, so the split over devices changes nothing
    but round-off. (With several minibatches each device draws them from its own
    environments, so their membership depends on the split.)
    """
    loss = LossConfig(name="ppo", ppo_epochs=2, ppo_minibatches=1, popart=True)
    one, two = ppo_learner(1, loss), ppo_learner(2, loss)
    state = one.init_state(jax.random.PRNGKey(0))
    batch = random_trajectory(AGENT, T, B, seed=3)
    state_1, metrics_1 = one.update(one.replicate(state), batch)
    state_2, metrics_2 = two.update(two.replicate(state), batch)
    for a, b in zip(jax.tree.leaves(one.unreplicate(state_1)),
                    jax.tree.leaves(two.unreplicate(state_2)), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)
    metrics_1, metrics_2 = jax.device_get((first_replica(metrics_1), first_replica(metrics_2)))
    assert metrics_1["loss"] == pytest.approx(metrics_2["loss"], abs=1e-5)
    assert metrics_1["nonfinite_loss"] == 0.0 and 0.0 < metrics_1["update_norm"]


def test_a_linear_schedule_decays_over_the_runs_optimiser_steps(tmp_path):
    """PPO takes epochs x minibatches optimiser steps an update, and a linear schedule runs
    over all of them: in a one-update run of two epochs the second step still moves the
    parameters at half the rate (a schedule over updates spent its whole decay on the first
    step, so every later step of a PPO run learned nothing)."""
    def one_update(epochs):
        config = tiny_config(
            tmp_path, "loss.name=ppo", f"loss.ppo_epochs={epochs}", "loss.ppo_minibatches=1",
            "optimizer.schedule=linear", "optimizer.learning_rate=0.01",
            "optimizer.eps=1.0",  # Adam's steps then scale with the gradient, not its sign,
            "learner.total_env_steps=32")  # so round-off cannot pass for a step; 1 update
        layout, spec = check_config(config)
        assert layout.total_updates == 1
        agent = make_agent(config, spec, len(layout.tasks))
        learner = Learner(make_learning(config, agent, layout), jax.local_devices()[:1],
                          trajectory_len=config.learner.trajectory_len)
        state = learner.init_state(jax.random.PRNGKey(0))
        start = jax.device_get(state.params)
        new_state, _ = learner.update(learner.replicate(state),
                                      random_trajectory(agent, 8, 4, seed=5))
        return start, jax.device_get(learner.unreplicate(new_state).params)

    start, after_one_step = one_update(epochs=1)
    _, after_two_steps = one_update(epochs=2)
    first = optax.global_norm(jax.tree.map(np.subtract, after_one_step, start))
    second = optax.global_norm(jax.tree.map(np.subtract, after_two_steps, after_one_step))
    assert 0.3 * first < second < 0.7 * first  # the second step at half the first's rate


@pytest.mark.parametrize("normalise", [True, False])
def test_ppo_standardises_advantages_over_the_batch_unless_told_not_to(normalise):
    """One step on the whole batch sees the batch's GAE advantages: standardised (mean 0)
    by default, in return units with `ppo_normalise_advantages=false`."""
    loss = LossConfig(name="ppo", ppo_epochs=1, ppo_minibatches=1,
                      ppo_normalise_advantages=normalise)
    learner = ppo_learner(1, loss)
    state = learner.init_state(jax.random.PRNGKey(0))
    batch = random_trajectory(AGENT, T, B, seed=4)
    _, metrics = learner.update(learner.replicate(state), batch)
    seen = float(first_replica(metrics)["pg_advantage_mean"])

    outputs, _ = AGENT.unroll(state.params, batch.inputs, batch.core_state, segment_len=3)
    transition = transitions(batch, loss.discount)
    values = losses.select_task_values(outputs.values, batch.task_id)
    gae = losses.gae_targets(values, transition["rewards"], transition["discounts"],
                             transition["mask"], lambda_=loss.gae_lambda).pg_advantages
    mask = np.asarray(transition["mask"])
    raw_mean = float(np.asarray(gae)[mask].mean())
    assert abs(raw_mean) > 1e-2  # the check below can tell the two apart
    assert seen == pytest.approx(0.0 if normalise else raw_mean, abs=1e-5)


def test_ppo_with_popart_divides_advantages_in_return_units_by_sigma():
    """With PopArt, GAE runs on the values in return units, sigma n(x) + mu, the policy
    sees those advantages divided by sigma, and the statistics then move toward the GAE
    value targets."""
    loss = LossConfig(name="ppo", ppo_epochs=1, ppo_minibatches=1, popart=True,
                      ppo_normalise_advantages=False)
    learner = ppo_learner(1, loss)
    state = learner.init_state(jax.random.PRNGKey(0))
    mu, sigma = 0.5, 0.25

    def popart():  # fresh arrays each time: the update donates its state's buffers
        return losses.PopArtState(shift=jnp.full([1], mu), scale=jnp.full([1], sigma),
                                  second_moment=jnp.full([1], mu**2 + sigma**2))

    state = state.replace(popart=popart())
    batch = random_trajectory(AGENT, T, B, seed=4)
    new_state, metrics = learner.update(learner.replicate(state), batch)
    new_state = learner.unreplicate(new_state)
    seen = float(first_replica(metrics)["pg_advantage_mean"])

    outputs, _ = AGENT.unroll(state.params, batch.inputs, batch.core_state, segment_len=3)
    transition = transitions(batch, loss.discount)
    values = sigma * losses.select_task_values(outputs.values, batch.task_id) + mu
    gae = losses.gae_targets(values, transition["rewards"], transition["discounts"],
                             transition["mask"], lambda_=loss.gae_lambda)
    mask = np.asarray(transition["mask"])
    assert seen == pytest.approx(float(np.asarray(gae.pg_advantages)[mask].mean()) / sigma,
                                 rel=1e-4)
    moved = losses.popart_update(popart(), gae.vs, batch.task_id, jnp.asarray(mask))
    np.testing.assert_allclose(new_state.popart.shift, moved.shift, rtol=1e-5)
    np.testing.assert_allclose(new_state.popart.scale, moved.scale, rtol=1e-5)
    assert float(new_state.popart.scale[0]) != sigma
    logged = first_replica(metrics)  # one task: the statistics logged without a task suffix
    assert (float(logged["popart_mu"]), float(logged["popart_sigma"])) == (
        float(new_state.popart.shift[0]), float(new_state.popart.scale[0]))


def test_ppo_minibatches_must_divide_the_batch():
    learner = ppo_learner(1)
    state = learner.replicate(learner.init_state(jax.random.PRNGKey(0)))
    with pytest.raises(ValueError, match="loss.ppo_minibatches=2 must divide the 3"):
        learner.update(state, random_trajectory(AGENT, T, 3))


def test_ppo_learns_a_short_tmaze_on_device(tmp_path):
    """Trained as a user would (XLA's default optimisation level, one device): it solves by
    ~12k steps."""
    summary = train_as_a_user(
        tmp_path, "env.task=TMaze-L3", *TINY_AGENT, "learner.loop=on_device", "loss.name=ppo",
        "loss.ppo_minibatches=2", "env.num_envs=8", "learner.batch_size=8",
        "learner.trajectory_len=8", "learner.total_env_steps=40000",
        "run.log_interval_updates=25", "run.checkpoint_interval_updates=1000",
        "run.eval_episodes=32")
    assert summary["eval"]["greedy"]["success"] >= 0.9, summary["eval"]
