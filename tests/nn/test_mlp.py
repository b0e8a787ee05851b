"""Tests for gtrxl_jax.nn.mlp: the relu layers of heads, decoders and the MLP torso."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtrxl_jax.nn.heads import ObservationDecoder, PolicyValueHead
from gtrxl_jax.nn.torsos import MLPTorso

X = jnp.ones((2, 5))


@pytest.mark.parametrize("module, layers", [
    (PolicyValueHead(num_actions=3, hidden_sizes=(8, 4)), ["hidden_0", "hidden_1"]),
    (ObservationDecoder(observation_size=3, hidden_sizes=(8, 4)), ["hidden_0", "hidden_1"]),
    (MLPTorso(hidden_sizes=(8, 4)), ["dense_0", "dense_1"]),
])
def test_relu_layers_keep_the_parameter_names_that_checkpoints_hold(module, layers):
    """Saved runs name these layers; a rename would make every checkpoint unloadable."""
    params = module.init(jax.random.key(0), X)["params"]
    assert [name for name in params if name in layers] == layers
    assert [params[name]["kernel"].shape for name in layers] == [(5, 8), (8, 4)]


def test_relu_layers_apply_relu_after_each_dense_layer():
    torso = MLPTorso(hidden_sizes=(8, 4))
    params = torso.init(jax.random.key(0), X)["params"]
    expected = X
    for name in ("dense_0", "dense_1"):
        expected = jax.nn.relu(expected @ params[name]["kernel"] + params[name]["bias"])
    np.testing.assert_allclose(torso.apply({"params": params}, X), expected, rtol=1e-6)
