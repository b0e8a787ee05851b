"""The relu MLP that torsos, heads and decoders share: Dense layers, each followed by a relu."""

from collections.abc import Sequence
from typing import Any

import flax.linen as nn
import jax

from gtrxl_jax.nn.precision import dense_options


def relu_layers(x: jax.Array, sizes: Sequence[int], dtype: Any, prefix: str) -> jax.Array:
    """Apply relu(Dense(size)) for each of `sizes`, inside the calling module's compact call.

    The layers are the calling module's submodules `<prefix>_0`, `<prefix>_1`, ...; they
    compute in `dtype` with float32 parameters and accumulation (`dense_options`).

    Args:
      x: features [..., D].
      sizes: each layer's width; empty returns `x` as it is.
      dtype: compute dtype.
      prefix: the layers' name prefix.

    Returns:
      [..., sizes[-1]] (or `x`).
    """
    for i, size in enumerate(sizes):
        x = nn.relu(nn.Dense(size, name=f"{prefix}_{i}", **dense_options(dtype))(x))
    return x
