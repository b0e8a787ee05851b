"""The gating layers of GTrXL (Parisotto et al. 2019, arXiv:1910.06764, section 3.2).

Each gate combines the residual stream x with a submodule's output y. They share one
signature, `gate(x, y, b_g, project) -> g`, where `project(name, inputs, n)` is one fused
bias-free matmul that returns n D-wide projections of `inputs` (float32), and live in one
registry, so the gate is a configuration value.
"""

from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from gtrxl_jax.nn.precision import dense_options

Project = Callable[[str, jax.Array, int], tuple[jax.Array, ...]]


def input_gate(x: jax.Array, y: jax.Array, b_g: float, project: Project) -> jax.Array:
    """G = sigma(W_g x) * x + y (no bias; b_g is unused)."""
    del b_g
    (w_g_x,) = project("W_g", x, 1)
    return jax.nn.sigmoid(w_g_x) * x + y


def output_gate(x: jax.Array, y: jax.Array, b_g: float, project: Project) -> jax.Array:
    """G = x + sigma(W_g x - b_g) * y."""
    (w_g_x,) = project("W_g", x, 1)
    return x + jax.nn.sigmoid(w_g_x - b_g) * y


def highway_gate(x: jax.Array, y: jax.Array, b_g: float, project: Project) -> jax.Array:
    """G = sigma(W_g x + b_g) * x + (1 - sigma(W_g x + b_g)) * y."""
    (w_g_x,) = project("W_g", x, 1)
    carry = jax.nn.sigmoid(w_g_x + b_g)
    return carry * x + (1.0 - carry) * y


def sigmoid_tanh_gate(x: jax.Array, y: jax.Array, b_g: float, project: Project) -> jax.Array:
    """G = x + sigma(W_g y - b_g) * tanh(U_g y)."""
    w_g_y, u_g_y = project("WU_g", y, 2)
    return x + jax.nn.sigmoid(w_g_y - b_g) * jnp.tanh(u_g_y)


def gru_gate(x: jax.Array, y: jax.Array, b_g: float, project: Project) -> jax.Array:
    """The GRU-type gate, the paper's best.

    r = sigma(W_r y + U_r x), z = sigma(W_z y + U_z x - b_g),
    h_hat = tanh(W_g y + U_g (r * x)), g = (1 - z) * x + z * h_hat.
    """
    w_r_y, w_z_y, w_g_y = project("W", y, 3)
    u_r_x, u_z_x = project("U", x, 2)
    r = jax.nn.sigmoid(w_r_y + u_r_x)
    z = jax.nn.sigmoid(w_z_y + u_z_x - b_g)
    (u_g_rx,) = project("U_g", r * x, 1)
    h_hat = jnp.tanh(w_g_y + u_g_rx)
    return (1.0 - z) * x + z * h_hat


GATE_FUNCTIONS: dict[str, Callable[[jax.Array, jax.Array, float, Project], jax.Array]] = {
    "input": input_gate,
    "output": output_gate,
    "highway": highway_gate,
    "sigmoid_tanh": sigmoid_tanh_gate,
    "gru": gru_gate,
}


class Gate(nn.Module):
    """A gating layer g(x, y) chosen by name from GATE_FUNCTIONS.

    Attributes:
      kind: a key of GATE_FUNCTIONS.
      bias: b_g.
      dtype: compute dtype of the projections; the gate's arithmetic runs in float32.
      param_dtype: parameter dtype.
    """

    kind: str
    bias: float
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Combines the stream x [..., D] with the submodule output y [..., D] (float32)."""
        if self.kind not in GATE_FUNCTIONS:
            raise ValueError(f"Unknown gate {self.kind!r}; allowed: {tuple(GATE_FUNCTIONS)}.")
        width = x.shape[-1]

        def project(name: str, inputs: jax.Array, n: int) -> tuple[jax.Array, ...]:
            options = dense_options(self.dtype, self.param_dtype)
            dense = nn.Dense(n * width, use_bias=False, name=name, **options)
            return tuple(jnp.split(dense(inputs), n, axis=-1))

        return GATE_FUNCTIONS[self.kind](x, y, self.bias, project)
