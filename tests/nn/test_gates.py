"""Each gate against its equation in the GTrXL paper (section 3.2), with NumPy."""

import jax
import numpy as np
import pytest

from gtrxl_jax.nn.gates import GATES, Gate


def sigmoid(a):
    return 1.0 / (1.0 + np.exp(-a))


def kernels(params, name, n):
    """Splits a fused kernel [D, n*D] into n [D, D] matrices (x @ W convention)."""
    return np.split(np.asarray(params["params"][name]["kernel"]), n, axis=-1)


def reference(kind, p, x, y, b):
    if kind == "input":
        (W_g,) = kernels(p, "W_g", 1)
        return sigmoid(x @ W_g) * x + y
    if kind == "output":
        (W_g,) = kernels(p, "W_g", 1)
        return x + sigmoid(x @ W_g - b) * y
    if kind == "highway":
        (W_g,) = kernels(p, "W_g", 1)
        c = sigmoid(x @ W_g + b)
        return c * x + (1 - c) * y
    if kind == "sigmoid_tanh":
        W_g, U_g = kernels(p, "WU_g", 2)
        return x + sigmoid(y @ W_g - b) * np.tanh(y @ U_g)
    W_r, W_z, W_g = kernels(p, "W", 3)
    U_r, U_z = kernels(p, "U", 2)
    (U_g,) = kernels(p, "U_g", 1)
    r = sigmoid(y @ W_r + x @ U_r)
    z = sigmoid(y @ W_z + x @ U_z - b)
    h_hat = np.tanh(y @ W_g + (r * x) @ U_g)
    return (1 - z) * x + z * h_hat


@pytest.mark.parametrize("kind", sorted(GATES))
def test_gate_matches_equation(kind):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(3, 4)).astype(np.float32)
    y = rng.normal(size=(3, 4)).astype(np.float32)
    gate = Gate(kind=kind, bias=1.5)
    params = gate.init(jax.random.PRNGKey(0), x, y)
    np.testing.assert_allclose(
        gate.apply(params, x, y), reference(kind, params, x, y, 1.5), atol=1e-5
    )


def test_gru_gate_hand_example():
    """All weights zero: r = 1/2, z = sigma(-b_g), h_hat = 0, so g = (1 - sigma(-b_g)) x."""
    x = np.array([[1.0, -2.0]], np.float32)
    y = np.array([[3.0, 4.0]], np.float32)
    gate = Gate(kind="gru", bias=2.0)
    params = jax.tree.map(np.zeros_like, gate.init(jax.random.PRNGKey(0), x, y))
    expected = (1 - 1 / (1 + np.exp(2.0))) * x  # 0.8808 * x
    np.testing.assert_allclose(gate.apply(params, x, y), expected, rtol=1e-6)


def test_unknown_gate_is_rejected():
    with pytest.raises(ValueError, match="allowed"):
        Gate(kind="lstm", bias=0.0).init(jax.random.PRNGKey(0), np.ones((1, 2)), np.ones((1, 2)))


@pytest.mark.parametrize("kind", sorted(GATES))
def test_gate_table_lists_the_matmuls_each_gate_makes(kind):
    """GATES[kind].matmuls (the FLOP count's and the matmul floor's) are the fused matmuls made."""
    made = []

    def project(name, inputs, n):
        made.append(n)
        return (inputs,) * n

    x = np.ones((2, 3), np.float32)
    GATES[kind].function(x, x, 1.0, project)
    assert tuple(made) == GATES[kind].matmuls


def test_gate_table_holds_the_papers_biases():
    """GTrXL section 3.2: b_g = 2 for the GRU gate, 1 for the others with a bias."""
    assert {kind: spec.paper_bias for kind, spec in GATES.items()} == {
        "input": None, "output": 1.0, "highway": 1.0, "sigmoid_tanh": 1.0, "gru": 2.0}
