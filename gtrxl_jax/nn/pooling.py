"""Max pooling whose gradient is elementwise work over shifted windows (for XLA:CPU).

The gradient of `lax.reduce_window` max is a select-and-scatter, which XLA:CPU expands into
a variadic reduce-window over (value, index) pairs with an index iota as large as the input;
in the IMPALA ResNet's learner update it takes more time than any convolution. Here the
forward pass stays XLA's reduce-window, and the backward pass routes each output's gradient
to the first maximum of its window (the element select-and-scatter picks, so the gradients
are equal, ties included) with one mask per window offset and strided pads, all of which
XLA fuses into elementwise loops.
"""

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
from jax import lax


def _pads(padding, size: Sequence[int], window: Sequence[int], strides: Sequence[int]):
    """Padding pairs of the spatial axes: "SAME", "VALID" or explicit pairs."""
    if isinstance(padding, str):
        return tuple(lax.padtype_to_pads(size, window, strides, padding))
    return tuple(tuple(int(p) for p in pair) for pair in padding)


def _windows(x: jax.Array, window, strides, pads, out_hw) -> list[jax.Array]:
    """Each window offset's strided view of the -inf padded input, [N, OH, OW, C] each."""
    padded = jnp.pad(x, ((0, 0), *pads, (0, 0)), constant_values=-jnp.inf)
    (sh, sw), (oh, ow) = strides, out_hw
    return [padded[:, i : i + sh * (oh - 1) + 1 : sh, j : j + sw * (ow - 1) + 1 : sw, :]
            for i in range(window[0]) for j in range(window[1])]


def _reduce_window_max(x: jax.Array, window, strides, pads) -> jax.Array:
    return lax.reduce_window(x, -jnp.inf, lax.max, (1, *window, 1), (1, *strides, 1),
                             ((0, 0), *pads, (0, 0)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3))
def _max_pool(x: jax.Array, window: tuple, strides: tuple, pads: tuple) -> jax.Array:
    return _reduce_window_max(x, window, strides, pads)


def _forward(x, window, strides, pads):
    y = _reduce_window_max(x, window, strides, pads)
    return y, (x, y)


def _backward(window, strides, pads, residuals, grad_y):
    x, y = residuals
    (oh, ow), (sh, sw) = y.shape[1:3], strides
    height, width = (size + low + high for size, (low, high) in zip(x.shape[1:3], pads,
                                                                     strict=True))
    zero = jnp.zeros((), grad_y.dtype)
    taken = jnp.zeros(y.shape, bool)
    grad_padded = jnp.zeros((x.shape[0], height, width, x.shape[3]), grad_y.dtype)
    for offset, view in enumerate(_windows(x, window, strides, pads, (oh, ow))):
        i, j = divmod(offset, window[1])
        first_max = (view == y) & ~taken  # select-and-scatter keeps the first maximum
        taken = taken | first_max
        routed = jnp.where(first_max, grad_y, zero)  # [N, OH, OW, C] onto the padded input
        grad_padded = grad_padded + lax.pad(routed, zero, (
            (0, 0, 0),
            (i, height - i - sh * (oh - 1) - 1, sh - 1),
            (j, width - j - sw * (ow - 1) - 1, sw - 1),
            (0, 0, 0)))
    (top, _), (left, _) = pads
    return (grad_padded[:, top : top + x.shape[1], left : left + x.shape[2], :],)


_max_pool.defvjp(_forward, _backward)


def max_pool(x: jax.Array, window_shape: Sequence[int], strides: Sequence[int],
             padding: str | Sequence[tuple[int, int]] = "VALID") -> jax.Array:
    """Max pooling of [N, H, W, C] with an elementwise gradient (`flax.linen.max_pool`'s values).

    Args:
      x: [N, H, W, C] float.
      window_shape: (kh, kw).
      strides: (sh, sw).
      padding: "SAME", "VALID" or ((top, bottom), (left, right)), as flax's max_pool.

    Returns:
      [N, OH, OW, C], equal to `flax.linen.max_pool(x, window_shape, strides, padding)`;
      its gradient routes to the same elements as flax's max_pool's (equal up to the order
      in which an input's share of overlapping windows is summed), without a
      select-and-scatter.
    """
    if x.ndim != 4:
        raise ValueError(f"max_pool takes [N, H, W, C], got shape {x.shape}.")
    window, strides = tuple(window_shape), tuple(strides)
    return _max_pool(x, window, strides, _pads(padding, x.shape[1:3], window, strides))
