"""Tests of the learner's optimiser: steps, clipping, schedules and argument errors."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from gtrxl_jax.train.optimizer import clip_by_recent_norm, make_optimizer, make_schedule

PARAMS = {"w": jnp.array([[1.0, -2.0], [0.5, 3.0]]), "b": jnp.array([0.3, -0.7])}


def _loss(params):
    return jnp.sum(jnp.square(params["w"])) + jnp.sum(jnp.square(params["b"] - 1.0))


def _first_update(optimizer, grads):
    updates, _ = optimizer.update(grads, optimizer.init(PARAMS), PARAMS)
    return updates


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_each_optimizer_descends(name):
    optimizer = make_optimizer(name, 0.01, momentum=0.0)
    state = optimizer.init(PARAMS)

    @jax.jit
    def step(params, state):
        updates, state = optimizer.update(jax.grad(_loss)(params), state, params)
        return optax.apply_updates(params, updates), state

    params = PARAMS
    for _ in range(20):
        params, state = step(params, state)
    assert _loss(params) < 0.9 * _loss(PARAMS)


def test_rmsprop_defaults_match_impala_tensorflow_rmsprop():
    """TF1 RMSProp: ms = 1 initially, ms <- 0.99 ms + 0.01 g^2, update = -lr g / sqrt(ms + 0.1)."""
    grads = jax.grad(_loss)(PARAMS)
    updates = _first_update(make_optimizer("rmsprop", 1e-3, max_grad_norm=None), grads)
    for key in PARAMS:
        g = np.asarray(grads[key])
        expected = -1e-3 * g / np.sqrt(0.99 * 1.0 + 0.01 * g**2 + 0.1)
        np.testing.assert_allclose(updates[key], expected, rtol=1e-5)


def test_rmsprop_momentum_accumulates_updates():
    grads = jax.grad(_loss)(PARAMS)

    def second_update(optimizer):
        state = optimizer.init(PARAMS)
        first, state = optimizer.update(grads, state, PARAMS)
        return first, optimizer.update(grads, state, PARAMS)[0]

    first, plain = second_update(make_optimizer("rmsprop", 1e-3))
    _, heavy = second_update(make_optimizer("rmsprop", 1e-3, momentum=0.9))
    np.testing.assert_allclose(heavy["w"], 0.9 * first["w"] + plain["w"], rtol=1e-5)


@pytest.mark.parametrize("name", ["rmsprop", "adam"])
def test_clipping_comes_first_and_bounds_the_gradient(name):
    max_norm = 2.0
    clipped = make_optimizer(name, 1e-3, max_grad_norm=max_norm)
    unclipped = make_optimizer(name, 1e-3, max_grad_norm=None)
    big = jax.tree.map(lambda x: 1e3 * x, jax.grad(_loss)(PARAMS))
    rescaled = jax.tree.map(lambda x: x * max_norm / optax.global_norm(big), big)
    # The big gradient acts exactly as itself scaled down to the maximum norm.
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5),
                 _first_update(clipped, big), _first_update(unclipped, rescaled))
    small = jax.tree.map(lambda x: 1e-4 * x, big)
    assert optax.global_norm(small) < max_norm
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-6),
                 _first_update(clipped, small), _first_update(unclipped, small))
    clip = optax.clip_by_global_norm(max_norm)
    assert optax.global_norm(clip.update(big, clip.init(PARAMS))[0]) <= max_norm * (1 + 1e-6)


def test_linear_schedule_decays_to_zero():
    schedule = make_schedule(0.1, "linear", total_steps=100)
    np.testing.assert_allclose([schedule(0), schedule(50), schedule(100), schedule(150)],
                               [0.1, 0.05, 0.0, 0.0], atol=1e-8)
    np.testing.assert_allclose(make_schedule(0.1)(10**6), 0.1)


def test_linear_schedule_scales_the_updates():
    grads = jax.grad(_loss)(PARAMS)
    decaying = make_optimizer("rmsprop", 1e-2, schedule="linear", total_steps=10)
    constant = make_optimizer("rmsprop", 1e-2)
    states = [decaying.init(PARAMS), constant.init(PARAMS)]
    for step in range(6):
        (dec, states[0]), (con, states[1]) = (
            decaying.update(grads, states[0], PARAMS), constant.update(grads, states[1], PARAMS))
        np.testing.assert_allclose(dec["w"], (1 - step / 10) * con["w"], rtol=1e-5)


@pytest.mark.parametrize("kwargs, match", [
    (dict(name="sgd"), r"optimizer name must be one of \('adam', 'amsgrad', 'rmsprop'\)"),
    (dict(learning_rate=0.0), "learning_rate must be a finite number > 0"),
    (dict(learning_rate=-1e-3), "learning_rate"),
    (dict(learning_rate=float("nan")), "learning_rate"),
    (dict(max_grad_norm=0.0), "max_grad_norm must be a finite number > 0"),
    (dict(schedule="cosine"), r"schedule must be one of \('constant', 'linear'\)"),
    (dict(schedule="linear"), "total_steps is required with schedule='linear'"),
    (dict(schedule="linear", total_steps=0), "total_steps must be a positive int"),
    (dict(eps=0.0), "eps must be a finite number > 0"),
    (dict(decay=1.0), r"decay must be in \[0, 1\)"),
    (dict(momentum=-0.1), "momentum"),
    (dict(b2=1.5), "b2"),
    (dict(initial_scale=-1.0), "initial_scale"),
])
def test_bad_arguments_name_the_argument(kwargs, match):
    args = dict(name="rmsprop", learning_rate=1e-3)
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        make_optimizer(args.pop("name"), args.pop("learning_rate"), **args)


def test_a_spike_is_clipped_to_its_factor_times_the_recent_gradient_norms():
    clip = clip_by_recent_norm(3.0, decay=0.9)
    params = {"w": jnp.zeros(4)}
    state = clip.init(params)
    norms = []
    for scale in [1.0] * 30 + [100.0, 1.0]:
        update, state = clip.update({"w": jnp.full(4, scale / 2)}, state)  # norm = scale
        norms.append(float(optax.global_norm(update)))
    assert norms[:30] == pytest.approx([1.0] * 30)  # the first update (no history) included
    assert norms[30] == pytest.approx(3.0, rel=1e-5)  # 100x the recent norm, let through at 3x
    assert norms[31] == pytest.approx(1.0)


def test_the_recent_norm_clip_needs_a_factor_above_one():
    with pytest.raises(ValueError, match="factor must be > 1"):
        clip_by_recent_norm(1.0)
    make_optimizer("adam", 1e-3, recent_norm_clip=2.0).init({"w": jnp.zeros(2)})
