"""Baseline cores with the GTrXL call signature: a stacked LSTM and a memoryless pass-through."""

import jax
import jax.numpy as jnp
from flax import linen as nn
from flax import struct

from gtrxl_jax.nn.checks import check_sequence, check_state_shapes, check_state_type
from gtrxl_jax.nn.config import (
    FeedForwardConfig,
    LSTMConfig,
    check_positive_int,
    resolve_dtype,
)


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


class _LSTMStep(nn.Module):
    """One time step of the stacked LSTM, resetting the state where an episode starts."""

    config: LSTMConfig

    @nn.compact
    def __call__(self, state: LSTMState, step: tuple[jax.Array, jax.Array]):
        x, first = step  # [B, D], [B]
        keep = (~first)[:, None, None]
        hidden, cell = state.hidden * keep, state.cell * keep
        dtype = resolve_dtype("LSTMConfig", "dtype", self.config.dtype)
        param_dtype = resolve_dtype("LSTMConfig", "param_dtype", self.config.param_dtype)
        new_hidden, new_cell = [], []
        for l in range(self.config.num_layers):
            cell_l = nn.OptimizedLSTMCell(
                self.config.hidden_size, dtype=dtype, param_dtype=param_dtype, name=f"lstm_{l}"
            )
            (c, h), x = cell_l((cell[:, l], hidden[:, l]), x)
            x = x.astype(jnp.float32)
            new_hidden.append(h.astype(jnp.float32))
            new_cell.append(c.astype(jnp.float32))
        state = LSTMState(hidden=jnp.stack(new_hidden, 1), cell=jnp.stack(new_cell, 1))
        return state, x


class LSTMCore(nn.Module):
    """A stacked LSTM core: `outputs, state = core.apply(params, inputs, first, state)`."""

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
        check_sequence(inputs, first)
        check_state_type("state", state, NoState, "init_memory(config, B)")
        return inputs.astype(jnp.float32), state
