"""Baseline cores with the GTrXL call signature: a stacked LSTM and a memoryless pass-through."""

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import struct
from flax.linen.recurrent import DenseParams

from gtrxl_jax.nn.checks import check_sequence, check_state_shapes, check_state_type
from gtrxl_jax.nn.config import (
    FeedForwardConfig,
    LSTMConfig,
    check_positive_int,
    resolve_dtype,
)
from gtrxl_jax.nn.precision import dense_matmul


@struct.dataclass
class LSTMState:
    """The LSTM core's state (batch on axis 0, like every core state).

    Attributes:
      hidden: [B, L, H] per layer, the hidden state h.
      cell: [B, L, H] per layer, the cell state c.
    """

    hidden: jax.Array
    cell: jax.Array

    def snapshot(self) -> "LSTMState":
        """A copy with buffers of its own: what a trajectory stores (see `nn.cores.CoreState`)."""
        return jax.tree.map(jnp.copy, self)


@struct.dataclass
class NoState:
    """The (empty) state of the feed-forward core; a pytree with no leaves."""

    def snapshot(self) -> "NoState":
        """The state itself: it holds nothing to copy (see `nn.cores.CoreState`)."""
        return self


def init_lstm_state(config: LSTMConfig, batch_size: int) -> LSTMState:
    """A zero LSTM state for `batch_size` sequences: hidden, cell [B, L, H]."""
    check_positive_int("batch_size", batch_size)
    shape = (batch_size, config.num_layers, config.hidden_size)
    return LSTMState(hidden=jnp.zeros(shape, jnp.float32), cell=jnp.zeros(shape, jnp.float32))


class _LSTMCell(nn.Module):
    """One LSTM layer's step with flax's OptimizedLSTMCell's parameters, accumulating in float32.

    i, f, g, o = split(x W_i + h W_h + b), with the four gates' kernels of each input fused
    into one matmul (flax's layout: "ii", "if", "ig", "io" for x, "hi", ..., "ho" with
    biases for h, and its initialisers). The matmuls compute in `dtype` and return float32
    (`precision.dense_matmul`), so the gates' pre-activations are summed in float32, as in
    the transformer cores; flax's cell returns them in `dtype`.
    """

    hidden_size: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    @nn.compact
    def __call__(self, cell: jax.Array, hidden: jax.Array, x: jax.Array):
        """(c [B, H], h [B, H], x [B, D]) -> (new c, new h), float32."""
        gates = self._fused(x, "i", nn.initializers.lecun_normal(), use_bias=False)
        gates += self._fused(hidden, "h", nn.initializers.orthogonal(), use_bias=True)
        i, f, g, o = jnp.split(gates, 4, axis=-1)
        new_cell = jax.nn.sigmoid(f) * cell + jax.nn.sigmoid(i) * jnp.tanh(g)
        return new_cell, jax.nn.sigmoid(o) * jnp.tanh(new_cell)

    def _fused(self, inputs: jax.Array, prefix: str, kernel_init, use_bias: bool) -> jax.Array:
        """The inputs [B, K] times the four gates' kernels [K, 4H] (plus biases), float32."""
        params = [DenseParams(self.hidden_size, use_bias, self.param_dtype,
                              kernel_init=kernel_init, name=f"{prefix}{gate}")(inputs)
                  for gate in "ifgo"]
        kernel = jnp.concatenate([kernel for kernel, _ in params], axis=-1)
        out = dense_matmul(inputs.astype(self.dtype), kernel.astype(self.dtype), 1)
        if use_bias:
            out += jnp.concatenate([bias for _, bias in params]).astype(jnp.float32)
        return out


class _LSTMStep(nn.Module):
    """One time step of the stacked LSTM, resetting the state where an episode starts."""

    config: LSTMConfig

    @nn.compact
    def __call__(self, state: LSTMState, step: tuple[jax.Array, jax.Array]):
        x, first = step  # [B, D], [B]
        # A select, not a product: a non-finite state of the episode before (0 x NaN = NaN)
        # must not outlive its end.
        reset = first[:, None, None]
        hidden, cell = jnp.where(reset, 0.0, state.hidden), jnp.where(reset, 0.0, state.cell)
        dtype = resolve_dtype("LSTMConfig", "dtype", self.config.dtype)
        param_dtype = resolve_dtype("LSTMConfig", "param_dtype", self.config.param_dtype)
        new_hidden, new_cell = [], []
        for l in range(self.config.num_layers):
            layer = _LSTMCell(self.config.hidden_size, dtype, param_dtype, name=f"lstm_{l}")
            c, x = layer(cell[:, l], hidden[:, l], x)
            new_hidden.append(x)
            new_cell.append(c)
        state = LSTMState(hidden=jnp.stack(new_hidden, 1), cell=jnp.stack(new_cell, 1))
        return state, x


class LSTMCore(nn.Module):
    """A stacked LSTM core: `outputs, state = core.apply(params, inputs, first, state)`.

    flax's initialisers throughout, so the forget gate's bias starts at 0 (not the +1 some
    LSTM baselines use).
    """

    config: LSTMConfig

    @nn.compact
    def __call__(
        self, inputs: jax.Array, first: jax.Array, state: LSTMState
    ) -> tuple[jax.Array, LSTMState]:
        """Runs T steps, resetting the state on first steps.

        Args:
          inputs: [T, B, D] float.
          first: [T, B] bool, True on an episode's first step.
          state: LSTMState from init_lstm_state or a previous call.

        Returns:
          outputs [T, B, H] float32 and the state after the T steps.
        """
        self._check(inputs, first, state)
        scan = nn.scan(_LSTMStep, variable_broadcast="params", split_rngs={"params": False})
        state, outputs = scan(self.config, name="step")(
            state, (inputs.astype(jnp.float32), first.astype(bool))
        )
        return outputs, state

    def _check(self, inputs: jax.Array, first: jax.Array, state: LSTMState) -> None:
        width = None
        if not self.is_initializing():  # the first layer's input kernel fixes D
            width = self.variables["params"]["step"]["lstm_0"]["ii"]["kernel"].shape[0]
        check_sequence(inputs, first, width, f"{width}, the width these parameters were made for")
        check_state_type("state", state, LSTMState, "init_memory(config, B)")
        expected = (inputs.shape[1], self.config.num_layers, self.config.hidden_size)
        check_state_shapes("state", "init_memory(config, B)", {
            "hidden": (state.hidden, "[B, L, H]", expected),
            "cell": (state.cell, "[B, L, H]", expected),
        })


class FeedForwardCore(nn.Module):
    """A memoryless core that passes its inputs through (the reactive baseline)."""

    config: FeedForwardConfig

    def __call__(
        self, inputs: jax.Array, first: jax.Array, state: NoState
    ) -> tuple[jax.Array, NoState]:
        """Returns inputs [T, B, D] as float32 and the (empty) state unchanged."""
        d_model = self.config.d_model
        check_sequence(inputs, first, d_model, f"d_model={d_model}")
        check_state_type("state", state, NoState, "init_memory(config, B)")
        return inputs.astype(jnp.float32), state
