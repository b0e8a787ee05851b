"""The auxiliary observation-reconstruction loss: the decoder, the loss, the update, the errors."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gtrxl_jax import losses
from gtrxl_jax.agent import Agent
from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.config import ConfigError, LossConfig, TrainConfig
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train import builder
from gtrxl_jax.train.learning import Learning
from gtrxl_jax.train.placement import Learner

T, B, O = 6, 4, 5
CORE = GTrXLConfig(num_layers=1, d_model=16, num_heads=2, memory_len=4)
PLAIN = Agent(jax.ShapeDtypeStruct((O,), np.float32), 3, CORE)
DECODING = dataclasses.replace(PLAIN, decode_observations=True)


def test_the_loss_is_the_mean_squared_error_over_the_unmasked_steps():
    rng = np.random.default_rng(0)
    decoded = rng.normal(size=(T, B, O)).astype(np.float32)
    observed = rng.normal(size=(T, B, O)).astype(np.float32)
    mask = rng.random((T, B)) > 0.3
    expected = np.mean((decoded - observed)[mask] ** 2)
    np.testing.assert_allclose(losses.reconstruction_loss(jnp.asarray(decoded),
                                                          jnp.asarray(observed),
                                                          jnp.asarray(mask)),
                               expected, rtol=1e-5)


@pytest.mark.needs_devices(2)
def test_an_update_with_the_loss_is_the_same_on_one_or_two_devices():
    """The term averages over the steps the other terms do, so the learner's weighting of
    devices by their valid transitions leaves the update independent of the split."""
    # SGD, as the other learners' split tests: Adam would amplify the devices' round-off.
    learners = [Learner(Learning(DECODING, LossConfig(reconstruction_cost=1.0), optax.sgd(0.1)),
                        jax.local_devices()[:n], trajectory_len=T) for n in (1, 2)]
    state = learners[0].init_state(jax.random.PRNGKey(3))
    batch = random_trajectory(DECODING, T, B, seed=4)
    after = [learner.unreplicate(learner.update(learner.replicate(state), batch)[0])
             for learner in learners]
    for a, b in zip(jax.tree.leaves(after[0]), jax.tree.leaves(after[1]), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5, rtol=1e-4)


def test_a_decoding_agent_decodes_every_step_and_keeps_the_other_parameters():
    key = jax.random.PRNGKey(0)
    plain, decoding = PLAIN.init(key), DECODING.init(key)
    assert "decoder" not in plain and "decoder" in decoding
    # The decoder's key is drawn apart: the rest of the agent starts as without it.
    for name in ("embedding", "core", "head"):
        jax.tree.map(np.testing.assert_array_equal, plain[name], decoding[name])
    batch = random_trajectory(DECODING, T, B)
    outputs, _ = DECODING.unroll(decoding, batch.inputs, batch.core_state)
    assert outputs.reconstruction.shape == (T + 1, B, O)
    plain_outputs, _ = PLAIN.unroll(plain, batch.inputs, batch.core_state)
    assert plain_outputs.reconstruction is None
    np.testing.assert_allclose(outputs.logits, plain_outputs.logits, atol=1e-6)


@pytest.mark.parametrize("name", ["vtrace", "ppo"])
def test_the_update_trains_the_decoder_only_with_a_positive_cost(name):
    batch = random_trajectory(DECODING, T, B)
    config = LossConfig(name=name, ppo_epochs=1, ppo_minibatches=2, reconstruction_cost=1.0)
    learning = Learning(DECODING, config, optax.adam(1e-2))
    state = learning.init_state(jax.random.PRNGKey(1))
    new_state, metrics = jax.jit(learning.update)(state, batch)
    assert float(metrics["reconstruction_loss"]) > 0
    before = jax.tree.leaves(state.params["decoder"])
    after = jax.tree.leaves(new_state.params["decoder"])
    assert any(not np.allclose(a, b) for a, b in zip(before, after, strict=True))
    # Repeated steps on one batch bring the reconstruction error down.
    update = jax.jit(learning.update)
    for _ in range(30):
        state, last = update(state, batch)
    assert float(last["reconstruction_loss"]) < 0.5 * float(metrics["reconstruction_loss"])


def test_the_cost_adds_to_the_loss():
    batch = random_trajectory(DECODING, T, B)
    params = DECODING.init(jax.random.PRNGKey(2))
    base = Learning(DECODING, LossConfig(reconstruction_cost=0.0), optax.adam(1e-3))
    weighted = Learning(DECODING, LossConfig(reconstruction_cost=2.0), optax.adam(1e-3))
    loss0, (metrics0, _) = base.loss(params, None, batch)
    loss2, (metrics2, _) = weighted.loss(params, None, batch)
    np.testing.assert_allclose(loss2 - loss0, 2.0 * metrics2["reconstruction_loss"], rtol=1e-5)
    np.testing.assert_allclose(metrics2["loss"], loss2, rtol=1e-6)


def test_a_negative_cost_is_refused():
    with pytest.raises(ConfigError, match="loss.reconstruction_cost must be >= 0"):
        LossConfig(reconstruction_cost=-0.1)


def test_a_non_vector_observation_is_refused_with_what_to_do():
    image = jax.ShapeDtypeStruct((8, 8, 3), np.uint8)
    with pytest.raises(ValueError, match="needs a vector observation.*reconstruction_cost=0"):
        Agent(image, 3, CORE, decode_observations=True)


def test_the_builder_adds_the_decoder_when_the_cost_is_positive():
    config = TrainConfig()
    config = dataclasses.replace(config, loss=dataclasses.replace(config.loss,
                                                                  reconstruction_cost=0.5))
    layout, spec = builder.check_config(config)
    assert builder.make_agent(config, spec, len(layout.tasks)).decode_observations
    layout, spec = builder.check_config(TrainConfig())
    assert not builder.make_agent(TrainConfig(), spec, len(layout.tasks)).decode_observations
