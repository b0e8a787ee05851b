"""Tests for gtrxl_jax.nn.heads."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtrxl_jax.losses import popart_init, popart_preserve_outputs
from gtrxl_jax.nn.heads import PolicyValueHead

T, B, D, A = 5, 3, 16, 6


def _features(shape=(T, B, D), seed=0):
    return jax.random.normal(jax.random.key(seed), shape)


@pytest.mark.parametrize("shape", [(T, B, D), (B, D), (D,)])
@pytest.mark.parametrize("hidden_sizes", [(), (32, 8)])
@pytest.mark.parametrize("num_tasks", [1, 3])
def test_shapes_and_dtypes(shape, hidden_sizes, num_tasks):
    head = PolicyValueHead(num_actions=A, hidden_sizes=hidden_sizes, num_tasks=num_tasks)
    features = _features(shape)
    params = head.init(jax.random.key(0), features)
    logits, value = jax.jit(head.apply)(params, features)
    chex.assert_shape(logits, shape[:-1] + (A,))
    chex.assert_shape(value, shape[:-1] + (num_tasks,))
    chex.assert_type([logits, value], jnp.float32)
    # One value unit per task: the layer PopArt's POP step rescales column by column.
    width = hidden_sizes[-1] if hidden_sizes else D
    chex.assert_shape(params["params"]["value"]["kernel"], (width, num_tasks))
    chex.assert_shape(params["params"]["value"]["bias"], (num_tasks,))


def test_the_single_task_value_layer_is_the_first_task_column():
    """N = 1 is the N-task head cut to its first output: same parameters, same value."""
    features = _features()
    single = PolicyValueHead(num_actions=A, hidden_sizes=(8,))
    params = single.init(jax.random.key(0), features)
    multi = PolicyValueHead(num_actions=A, hidden_sizes=(8,), num_tasks=3)
    multi_params = multi.init(jax.random.key(0), features)
    value = multi_params["params"]["value"]
    multi_params["params"]["value"] = {
        "kernel": value["kernel"].at[:, :1].set(params["params"]["value"]["kernel"]),
        "bias": value["bias"].at[:1].set(params["params"]["value"]["bias"]),
    }
    np.testing.assert_allclose(multi.apply(multi_params, features)[1][..., :1],
                               single.apply(params, features)[1], rtol=1e-6, atol=1e-7)


def test_time_major_batch_equals_per_step_application():
    head = PolicyValueHead(num_actions=A, hidden_sizes=(8,))
    features = _features()
    params = head.init(jax.random.key(0), features)
    logits, value = head.apply(params, features)
    for t in range(T):
        logits_t, value_t = head.apply(params, features[t])
        np.testing.assert_allclose(logits_t, logits[t], rtol=1e-6, atol=1e-6)
        np.testing.assert_allclose(value_t, value[t], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("hidden_sizes", [(), (32,)])
def test_initial_policy_is_near_uniform(hidden_sizes):
    head = PolicyValueHead(num_actions=A, hidden_sizes=hidden_sizes)
    features = _features()
    logits, value = head.apply(head.init(jax.random.key(0), features), features)
    probs = jax.nn.softmax(logits)
    np.testing.assert_allclose(probs, 1.0 / A, atol=0.05 / A)
    # The value layer keeps an ordinary init: it is not squashed with the logits.
    assert float(jnp.std(value)) > 10 * float(jnp.std(logits))


def test_zero_logits_init_scale_gives_exactly_uniform_policy():
    head = PolicyValueHead(num_actions=A, logits_init_scale=0.0)
    features = _features()
    logits, _ = head.apply(head.init(jax.random.key(0), features), features)
    np.testing.assert_array_equal(logits, 0.0)


def test_gradients_reach_every_parameter():
    head = PolicyValueHead(num_actions=A, hidden_sizes=(8,))
    features = _features()
    params = head.init(jax.random.key(0), features)

    def loss(p):
        logits, value = head.apply(p, features)
        return jnp.sum(jax.nn.log_softmax(logits)[..., 0]) + jnp.sum(value**2)

    grads = jax.grad(loss)(params)
    for path, grad in jax.tree_util.tree_leaves_with_path(grads):
        assert np.any(np.asarray(grad) != 0.0), f"no gradient reaches {jax.tree_util.keystr(path)}"


def test_bfloat16_compute_is_close_to_float32():
    head = PolicyValueHead(num_actions=A, hidden_sizes=(32,), logits_init_scale=1.0)
    features = _features()
    params = head.init(jax.random.key(0), features)
    logits, value = head.apply(params, features)
    logits_bf16, value_bf16 = head.clone(dtype=jnp.bfloat16).apply(params, features)
    chex.assert_type([logits_bf16, value_bf16], jnp.float32)
    np.testing.assert_allclose(logits_bf16, logits, atol=0.05 * float(jnp.max(jnp.abs(logits))))
    np.testing.assert_allclose(value_bf16, value, atol=0.05 * float(jnp.max(jnp.abs(value))))


def test_the_value_layer_computes_in_float32_under_bfloat16():
    """A value offset of 300.7 (the bias, in return units) is not rounded to bfloat16's 300,
    and PopArt's rescaling of the layer keeps the values it outputs."""
    head = PolicyValueHead(num_actions=A, hidden_sizes=(8,), dtype=jnp.bfloat16)
    features = _features()
    params = head.init(jax.random.key(0), features)
    layer = params["params"]["value"]
    offset = {"kernel": jnp.zeros_like(layer["kernel"]), "bias": jnp.array([300.7])}
    _, value = head.apply(_with_value_layer(params, offset), features)
    np.testing.assert_array_equal(value, np.float32(300.7))

    layer = {**layer, "bias": jnp.array([3.07])}
    old = popart_init(1)._replace(shift=jnp.array([50.0]), scale=jnp.array([10.0]))
    new = old._replace(shift=jnp.array([50.3]), scale=jnp.array([10.2]))
    _, before = head.apply(_with_value_layer(params, layer), features)
    _, after = head.apply(
        _with_value_layer(params, popart_preserve_outputs(layer, old, new)), features)
    np.testing.assert_allclose(new.scale * after + new.shift, old.scale * before + old.shift,
                               rtol=1e-6)


def _with_value_layer(params, layer):
    return {"params": {**params["params"], "value": layer}}


@pytest.mark.parametrize("kwargs, match", [
    ({"num_actions": 0}, "num_actions"),
    ({"num_actions": A, "num_tasks": 0}, "num_tasks"),
    ({"num_actions": A, "hidden_sizes": (8, 0)}, "hidden_sizes"),
    ({"num_actions": A, "logits_init_scale": -1.0}, "logits_init_scale"),
])
def test_rejects_bad_config(kwargs, match):
    with pytest.raises(ValueError, match=match):
        PolicyValueHead(**kwargs)


@pytest.mark.parametrize("features, match", [
    (jnp.zeros(()), "feature axis"),
    (jnp.zeros((B, D), jnp.int32), "floating features"),
])
def test_rejects_bad_features(features, match):
    head = PolicyValueHead(num_actions=A)
    with pytest.raises((AssertionError, ValueError), match=match):
        head.init(jax.random.key(0), features)
