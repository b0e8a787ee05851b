"""GTrXL core properties: identity at init, gradients, dtypes, JAX transforms, errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gtrxl_jax as gx
from tests.nn.helpers import init_core, jitted_apply, random_sequence


def config(**kw):
    base = dict(num_layers=2, d_model=16, num_heads=2, memory_len=4)
    return gx.GTrXLConfig(**{**base, **kw})


def mean_cosine(a, b):
    return float(
        jnp.mean(jnp.sum(a * b, -1) / jnp.linalg.norm(a, axis=-1) / jnp.linalg.norm(b, axis=-1))
    )


def test_gru_gate_starts_near_identity():
    """With b_g = 2 the gated stack passes its input nearly unchanged (the paper's reason for
    b_g > 0); the b_g = 0 ablation and the ungated TrXL-I do not."""
    T, B, D = 16, 4, 64
    inputs, _ = random_sequence(T, B, D)
    first = jnp.zeros((T, B), bool).at[0].set(True)

    def cosine(**kw):
        cfg = gx.GTrXLConfig(num_layers=4, d_model=D, num_heads=4, memory_len=8, **kw)
        core, memory = gx.GTrXL(cfg), gx.init_memory(cfg, B)
        params = jax.jit(core.init)(jax.random.PRNGKey(1), inputs, first, memory)
        return mean_cosine(jitted_apply(core)(params, inputs, first, memory)[0], inputs)

    assert cosine(gate="gru") > 0.8
    assert cosine(gate="gru", gate_bias=0.0) < 0.3
    assert cosine(variant="trxl_i") < 0.6


def test_no_gradient_into_memory_and_gradients_reach_every_parameter():
    cfg = config()
    core, params, inputs, first, memory = init_core(cfg, T=5, B=2)
    _, memory = jitted_apply(core)(params, inputs, first, memory)

    def loss(params, states):
        out, _ = core.apply(params, inputs, first, memory.replace(states=states))
        return jnp.sum(out**2)

    grads_params, grads_states = jax.jit(jax.grad(loss, argnums=(0, 1)))(params, memory.states)
    assert not np.any(np.asarray(grads_states))
    flat, _ = jax.tree_util.tree_flatten_with_path(grads_params)
    for path, g in flat:
        assert np.any(np.asarray(g) != 0), f"no gradient reaches {jax.tree_util.keystr(path)}"


@pytest.mark.parametrize("variant", ["gtrxl", "trxl_i"])
def test_the_memory_norm_folded_into_its_projection_equals_normalising_first(
        variant, monkeypatch):
    """memory_keys_values folds norm_attention's scale and bias into the key/value projection;
    the outputs and every gradient are those of normalising the memory, then projecting."""
    cfg = config(variant=variant)
    core, params, inputs, first, memory = init_core(cfg, T=5, B=2)
    _, memory = jitted_apply(core)(params, inputs, first, memory)
    first = jnp.zeros_like(first)  # every step reads the memory
    params = jax.tree_util.tree_map_with_path(  # the norms' scales and biases off 1 and 0
        lambda path, p: p + 0.3 * jax.random.normal(jax.random.PRNGKey(2), p.shape)
        if "norm" in jax.tree_util.keystr(path) else p, params)

    def loss_and_grads():
        def loss(params):
            out, _ = core.apply(params, inputs, first, memory)
            return jnp.sum(jnp.sin(out))
        return jax.jit(jax.value_and_grad(loss))(params)

    folded = loss_and_grads()

    def normalise_first(block, states):
        return block.attention.keys_values(block.norm_attention(states))

    monkeypatch.setattr(gx.nn.gtrxl.TransformerBlock, "memory_keys_values", normalise_first)
    plain = loss_and_grads()
    for x, y in zip(jax.tree.leaves(folded), jax.tree.leaves(plain), strict=True):
        np.testing.assert_allclose(x, y, rtol=1e-5, atol=1e-5)


def test_bfloat16_compute_is_close_to_float32():
    cfg32 = config(num_layers=2, d_model=32, num_heads=4, memory_len=6)
    cfg16 = config(num_layers=2, d_model=32, num_heads=4, memory_len=6, dtype="bfloat16")
    core32, params, inputs, first, memory = init_core(cfg32, T=8, B=3)
    out32, mem32 = jitted_apply(core32)(params, inputs, first, memory)
    out16, mem16 = jitted_apply(gx.GTrXL(cfg16))(params, inputs, first, memory)
    assert out16.dtype == jnp.float32 and jax.tree.leaves(params)[0].dtype == jnp.float32
    scale = float(jnp.abs(out32).mean())
    assert float(jnp.abs(out16 - out32).mean()) < 0.03 * scale
    np.testing.assert_array_equal(mem16.valid, mem32.valid)


def test_bfloat16_cached_acting_matches_its_unroll():
    cfg = config(dtype="bfloat16")
    core, params, inputs, first, memory = init_core(cfg, T=6, B=2)
    apply = jitted_apply(core)
    full, _ = apply(params, inputs, first, memory)
    memory = gx.init_memory(cfg, 2, cache=True)
    steps = []
    for t in range(6):
        out, memory = apply(params, inputs[t : t + 1], first[t : t + 1], memory)
        steps.append(out)
    np.testing.assert_allclose(jnp.concatenate(steps), full, atol=0.05)


def test_jit_vmap_grad_and_scan():
    cfg = config()
    core, params, inputs, first, memory = init_core(cfg, T=4, B=2)
    expected, expected_memory = core.apply(params, inputs, first, memory)  # op by op

    jitted, _ = jax.jit(core.apply)(params, inputs, first, memory)
    np.testing.assert_allclose(jitted, expected, atol=1e-5)

    # vmap over an extra leading axis of independent problems (here 2 copies), jitted.
    stack = lambda tree: jax.tree.map(lambda x: jnp.stack([x, x]), tree)  # noqa: E731
    vmapped, _ = jax.jit(jax.vmap(core.apply, in_axes=(None, 0, 0, 0)))(
        params, stack(inputs), stack(first), stack(memory)
    )
    np.testing.assert_allclose(vmapped[1], expected, atol=1e-5)

    # lax.scan over time, one step at a time, the memory as the carry.
    def step(memory, xs):
        x, f = xs
        out, memory = core.apply(params, x[None], f[None], memory)
        return memory, out[0]

    scan_memory, scanned = jax.lax.scan(step, memory, (inputs, first))
    np.testing.assert_allclose(scanned, expected, atol=1e-5)
    np.testing.assert_allclose(scan_memory.in_order().states, expected_memory.states, atol=1e-5)

    grads = jax.jit(jax.grad(lambda p: jnp.sum(core.apply(p, inputs, first, memory)[0])))(params)
    assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


@pytest.mark.needs_devices(2)
def test_pmap_over_two_devices():
    cfg = config()
    core, params, inputs, first, memory = init_core(cfg, T=4, B=4)
    expected, _ = jitted_apply(core)(params, inputs, first, memory)
    split_time_major = lambda x: jnp.stack(jnp.split(x, 2, axis=1))  # noqa: E731
    split_batch_major = lambda tree: jax.tree.map(lambda x: jnp.stack(jnp.split(x, 2)), tree)  # noqa: E731
    out, _ = jax.pmap(core.apply, in_axes=(None, 0, 0, 0))(
        params, split_time_major(inputs), split_time_major(first), split_batch_major(memory)
    )
    np.testing.assert_allclose(jnp.concatenate(list(out), axis=1), expected, atol=1e-5)


@pytest.mark.parametrize(
    "kw,match",
    [
        (dict(num_heads=3), "num_heads=3 does not divide d_model=16"),
        (dict(memory_len=0), "memory_len must be a positive int"),
        (dict(num_layers=-1), "num_layers must be a positive int"),
        (dict(variant="gated"), "variant='gated' is not one of"),
        (dict(gate="lstm"), "gate='lstm' is not one of"),
        (dict(dtype="float64"), "dtype='float64' is not one of"),
        (dict(d_ff=0), "d_ff must be a positive int"),
    ],
)
def test_config_rejects_bad_values(kw, match):
    with pytest.raises(ValueError, match=match):
        config(**kw)


def test_head_dim_may_differ_from_d_model():
    cfg = config(num_heads=3, head_dim=8)  # 3 x 8 = 24 != 16
    core, params, inputs, first, memory = init_core(cfg, T=3, B=2)
    out, _ = jitted_apply(core)(params, inputs, first, memory)
    assert out.shape == (3, 2, 16)


def test_gate_bias_defaults_follow_the_paper():
    assert config(gate="gru").resolved_gate_bias == 2.0
    assert config(gate="output").resolved_gate_bias == 1.0
    assert config(gate="gru", gate_bias=0.0).resolved_gate_bias == 0.0


@pytest.mark.parametrize("gate", ["gru", "output", "highway", "sigmoid_tanh"])
def test_a_learned_gate_bias_starts_as_the_constant_and_then_learns(gate):
    """learn_gate_bias: each gate holds b_g [D] at gate_bias, so the core computes what the
    constant-bias core computes with the same other parameters, and b_g gets a gradient."""
    fixed, learned = config(gate=gate), config(gate=gate, learn_gate_bias=True)
    core, params, inputs, first, memory = init_core(learned, T=3, B=2)
    biases = {path: leaf for path, leaf in jax.tree_util.tree_leaves_with_path(params)
              if path[-1].key == "b_g"}
    assert len(biases) == 2 * learned.num_layers  # the attention's gate and the MLP's
    for leaf in biases.values():
        np.testing.assert_array_equal(leaf, np.full(16, learned.resolved_gate_bias))
    without = _drop_gate_biases(params)
    out_learned, _ = jitted_apply(core)(params, inputs, first, memory)
    out_fixed, _ = jitted_apply(gx.GTrXL(fixed))(without, inputs, first, memory)
    np.testing.assert_allclose(out_learned, out_fixed, rtol=1e-6, atol=1e-6)

    grads = jax.grad(lambda p: jnp.sum(core.apply(p, inputs, first, memory)[0] ** 2))(params)
    assert all(float(jnp.abs(leaf).sum()) > 0
               for path, leaf in jax.tree_util.tree_leaves_with_path(grads)
               if path[-1].key == "b_g")


def test_the_input_gate_has_no_bias_to_learn():
    core, params, *_ = init_core(config(gate="input", learn_gate_bias=True), T=3, B=2)
    assert not any(path[-1].key == "b_g"
                   for path, _ in jax.tree_util.tree_leaves_with_path(params))


def _drop_gate_biases(tree):
    """The same parameter tree without its "b_g" entries."""
    if not isinstance(tree, dict):
        return tree
    return {key: _drop_gate_biases(value) for key, value in tree.items() if key != "b_g"}


def test_shape_errors_name_the_shapes():
    cfg = config()
    core, params, inputs, first, memory = init_core(cfg, T=3, B=2)
    with pytest.raises(ValueError, match="d_model=16"):
        core.apply(params, jnp.zeros((3, 2, 8)), first, memory)
    with pytest.raises(ValueError, match=r"first has shape \(3, 5\)"):
        core.apply(params, inputs, jnp.zeros((3, 5), bool), memory)
    other = gx.init_memory(config(memory_len=7), 2)
    with pytest.raises(ValueError,
                       match=r"memory.states has shape \(2, 2, 7, 16\).*init_memory\(config, B\)"):
        core.apply(params, inputs, first, other)
    with pytest.raises(AssertionError, match=r"\[T, B, D\]"):
        core.apply(params, inputs[0], first, memory)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        gx.init_memory(cfg, 0)
    with pytest.raises(TypeError, match="expected GTrXLConfig"):
        gx.make_core({"num_layers": 2})
