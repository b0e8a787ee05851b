"""One place that maps a core configuration to its module and its initial state.

Every core's state (GTrXL's `Memory`, `LSTMState`, `NoState`) is a pytree with the batch on
axis 0 of every leaf, and follows the `CoreState` protocol, so code that carries states
(actors, learners, the on-device loop) never asks which core it holds.
"""

from typing import Protocol

from flax import linen as nn

from gtrxl_jax.nn.config import CoreConfig, FeedForwardConfig, GTrXLConfig, LSTMConfig
from gtrxl_jax.nn.gtrxl import GTrXL
from gtrxl_jax.nn.memory import init_gtrxl_memory
from gtrxl_jax.nn.recurrent import FeedForwardCore, LSTMCore, NoState, init_lstm_state


class CoreState(Protocol):
    """What every core state offers besides being a batch-major pytree."""

    def snapshot(self) -> "CoreState":
        """What a trajectory stores as its start state.

        A copy in the order a multi-step call reads, without acting caches, in buffers of
        its own.
        """


def _unknown_config(config) -> TypeError:
    return TypeError(
        f"No core for {type(config).__name__}; "
        "expected GTrXLConfig, LSTMConfig or FeedForwardConfig."
    )


def make_core(config: CoreConfig) -> nn.Module:
    """The core module for a configuration (GTrXL / TrXL / TrXL-I, LSTM or feed-forward)."""
    if isinstance(config, GTrXLConfig):
        return GTrXL(config)
    if isinstance(config, LSTMConfig):
        return LSTMCore(config)
    if isinstance(config, FeedForwardConfig):
        return FeedForwardCore(config)
    raise _unknown_config(config)


def init_memory(config: CoreConfig, batch_size: int, cache: bool = False):
    """The initial state of any core for `batch_size` sequences (batch on axis 0 of every leaf).

    Args:
      config: a GTrXLConfig, LSTMConfig or FeedForwardConfig.
      batch_size: B.
      cache: GTrXL only: allocate the acting cache (keys and values of the memory).

    Returns:
      gtrxl: Memory(states [B, L, M, D], valid [B, M], position [B] (the ring's
      oldest slot), cache (None, or the keys and values per layer when `cache`)); lstm:
      LSTMState(hidden, cell [B, L, H]); feed-forward: NoState().
    """
    if isinstance(config, GTrXLConfig):
        return init_gtrxl_memory(config, batch_size, cache=cache)
    if isinstance(config, LSTMConfig):
        return init_lstm_state(config, batch_size)
    if isinstance(config, FeedForwardConfig):
        return NoState()
    raise _unknown_config(config)
