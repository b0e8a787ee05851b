"""The LSTM baseline: flax's LSTM parameters and equations, gates summed in float32."""

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

import gtrxl_jax as gx
from tests.nn.helpers import init_core, jitted_apply


def flax_reference(params, inputs, first, config, dtype):
    """The same core with flax's OptimizedLSTMCell per layer: outputs [T, B, H]."""
    cells = [nn.OptimizedLSTMCell(config.hidden_size, dtype=dtype)
             for _ in range(config.num_layers)]
    layers = params["params"]["step"]
    B, H = inputs.shape[1], config.hidden_size
    carry = [(jnp.zeros((B, H)), jnp.zeros((B, H))) for _ in cells]
    outputs = []
    for t in range(inputs.shape[0]):
        x = inputs[t]
        keep = (~first[t])[:, None]
        for l, cell in enumerate(cells):
            c, h = carry[l]
            (c, h), x = cell.apply({"params": layers[f"lstm_{l}"]}, (c * keep, h * keep), x)
            carry[l] = (c.astype(jnp.float32), h.astype(jnp.float32))
            x = x.astype(jnp.float32)
        outputs.append(x)
    return jnp.stack(outputs)


def test_the_lstm_has_flax_parameters_and_computes_flax_cell():
    config = gx.LSTMConfig(hidden_size=8, num_layers=2)
    core, params, inputs, first, state = init_core(config, T=5, B=3)
    first = first.at[3, 1].set(True)  # a reset mid-sequence
    flax_params = nn.OptimizedLSTMCell(8).init(
        jax.random.PRNGKey(0), (jnp.zeros((3, 8)), jnp.zeros((3, 8))), inputs[0])["params"]
    layer = params["params"]["step"]["lstm_0"]
    assert jax.tree.structure(layer) == jax.tree.structure(flax_params)
    assert jax.tree.map(jnp.shape, layer) == jax.tree.map(jnp.shape, flax_params)
    outputs, _ = jitted_apply(core)(params, inputs, first, state)
    np.testing.assert_allclose(outputs, flax_reference(params, inputs, first, config,
                                                       jnp.float32), rtol=1e-5, atol=1e-6)


def test_a_bfloat16_lstm_sums_its_gates_in_float32():
    """Its matmuls return float32 (no bfloat16 result), so it stays closer to float32 than
    flax's bfloat16 cell, whose gate pre-activations are bfloat16."""
    config = gx.LSTMConfig(hidden_size=64, num_layers=1, dtype="bfloat16")
    core, params, inputs, first, state = init_core(config, T=6, B=4)
    jaxpr = jax.make_jaxpr(core.apply)(params, inputs, first, state)
    text = str(jaxpr)
    assert "bf16[4,256] = dot_general" not in text and "f32[4,256] = dot_general" in text
    ours, _ = jitted_apply(core)(params, inputs, first, state)
    f32 = flax_reference(params, inputs, first, config, jnp.float32)
    flax_bf16 = flax_reference(params, inputs, first, config, jnp.bfloat16)
    assert float(jnp.abs(ours - f32).max()) < float(jnp.abs(flax_bf16 - f32).max())


def test_an_episode_start_clears_a_non_finite_state_of_the_episode_before():
    """A NaN input (a bad observation) spoils its own episode, not the next one."""
    config = gx.LSTMConfig(hidden_size=8, num_layers=2)
    core, params, inputs, first, state = init_core(config, T=4, B=2)
    inputs = inputs.at[1, 0].set(jnp.nan)
    first = first.at[2].set(True)
    outputs, _ = jitted_apply(core)(params, inputs, first, state)
    finite = np.isfinite(np.asarray(outputs)).all(axis=-1)
    np.testing.assert_array_equal(finite[:, 0], [True, False, True, True])
    assert finite[:, 1].all()
