"""The gating layers of GTrXL (Parisotto et al. 2019, arXiv:1910.06764, section 3.2).

Each gate combines the residual stream x with a submodule's output y. They share one
signature, `gate(x, y, b_g, project) -> g`, where `project(name, inputs, n)` is one fused
bias-free matmul that returns n D-wide projections of `inputs` (float32), and b_g is the
gate's bias: a constant offset in the equations of section 3.2, or a learned [D] vector
that starts at that value (`Gate.learn_bias`), as DI-engine's and most PyTorch ports of
GTrXL have it. `GATES` is the one
table of gates: each one's function, the paper's b_g, its label in tables and plots, and the
fused matmuls it makes (for FLOP counts and the acting step's matmul floor). Adding a gate
means adding its function and its row here; the configs, suites and benchmarks read the
table.
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
from flax import linen as nn

from gtrxl_jax.nn.precision import dense_options

Project = Callable[[str, jax.Array, int], tuple[jax.Array, ...]]
Bias = float | jax.Array  # b_g: a constant, or a learned [D] vector
GateFunction = Callable[[jax.Array, jax.Array, Bias, Project], jax.Array]


def input_gate(x: jax.Array, y: jax.Array, b_g: Bias, project: Project) -> jax.Array:
    """G = sigma(W_g x) * x + y (no bias; b_g is unused)."""
    del b_g
    (w_g_x,) = project("W_g", x, 1)
    return jax.nn.sigmoid(w_g_x) * x + y


def output_gate(x: jax.Array, y: jax.Array, b_g: Bias, project: Project) -> jax.Array:
    """G = x + sigma(W_g x - b_g) * y."""
    (w_g_x,) = project("W_g", x, 1)
    return x + jax.nn.sigmoid(w_g_x - b_g) * y


def highway_gate(x: jax.Array, y: jax.Array, b_g: Bias, project: Project) -> jax.Array:
    """G = sigma(W_g x + b_g) * x + (1 - sigma(W_g x + b_g)) * y."""
    (w_g_x,) = project("W_g", x, 1)
    carry = jax.nn.sigmoid(w_g_x + b_g)
    return carry * x + (1.0 - carry) * y


def sigmoid_tanh_gate(x: jax.Array, y: jax.Array, b_g: Bias, project: Project) -> jax.Array:
    """G = x + sigma(W_g y - b_g) * tanh(U_g y)."""
    w_g_y, u_g_y = project("WU_g", y, 2)
    return x + jax.nn.sigmoid(w_g_y - b_g) * jnp.tanh(u_g_y)


def gru_gate(x: jax.Array, y: jax.Array, b_g: Bias, project: Project) -> jax.Array:
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


@dataclasses.dataclass(frozen=True)
class GateSpec:
    """One gate's row in `GATES`.

    Attributes:
      function: the gate, `function(x, y, b_g, project) -> g`.
      paper_bias: the paper's b_g for this gate (section 3.2), None for a gate without one.
      label: its name in tables and plots ("GRU", "sigmoid-tanh", ...).
      matmuls: the fused matmuls one application makes, in order, each's width in units of
        D (the GRU gate's (3, 2, 1): W_r W_z W_g of y, U_r U_z of x, U_g of r * x).
    """

    function: GateFunction
    paper_bias: float | None
    label: str
    matmuls: tuple[int, ...]


# The paper uses b_g = 2 for the GRU gate and 1 for the other gates that have a bias.
GATES: dict[str, GateSpec] = {
    "input": GateSpec(input_gate, paper_bias=None, label="input", matmuls=(1,)),
    "output": GateSpec(output_gate, paper_bias=1.0, label="output", matmuls=(1,)),
    "highway": GateSpec(highway_gate, paper_bias=1.0, label="highway", matmuls=(1,)),
    "sigmoid_tanh": GateSpec(
        sigmoid_tanh_gate, paper_bias=1.0, label="sigmoid-tanh", matmuls=(2,)
    ),
    "gru": GateSpec(gru_gate, paper_bias=2.0, label="GRU", matmuls=(3, 2, 1)),
}


class Gate(nn.Module):
    """A gating layer g(x, y) chosen by name from GATES.

    Attributes:
      kind: a key of GATES.
      bias: b_g, or its initial value with `learn_bias`.
      learn_bias: make b_g a parameter "b_g" [D] (float32) of a gate that has a bias.
      dtype: compute dtype of the projections; the gate's arithmetic runs in float32.
      param_dtype: parameter dtype.
    """

    kind: str
    bias: float
    learn_bias: bool = False
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, y: jax.Array) -> jax.Array:
        """Combines the stream x [..., D] with the submodule output y [..., D] (float32)."""
        if self.kind not in GATES:
            raise ValueError(f"Unknown gate {self.kind!r}; allowed: {tuple(GATES)}.")
        width = x.shape[-1]

        def project(name: str, inputs: jax.Array, n: int) -> tuple[jax.Array, ...]:
            options = dense_options(self.dtype, self.param_dtype)
            dense = nn.Dense(n * width, use_bias=False, name=name, **options)
            return tuple(jnp.split(dense(inputs), n, axis=-1))

        b_g: Bias = self.bias
        if self.learn_bias and GATES[self.kind].paper_bias is not None:
            b_g = self.param("b_g", nn.initializers.constant(self.bias), (width,), jnp.float32)
        return GATES[self.kind].function(x, y, b_g, project)
