"""Max pooling whose gradient is elementwise work over shifted windows (for XLA:CPU).

The gradient of `lax.reduce_window` max is a select-and-scatter, which XLA:CPU expands into
a variadic reduce-window over (value, index) pairs with an index iota as large as the input;
in the IMPALA ResNet's learner update it takes more time than any convolution. Here the
forward pass stays XLA's reduce-window, and the backward pass routes each output's gradient
to the first maximum of its window (the element select-and-scatter picks, so the gradients
are equal, ties included) with one mask per window offset, then adds the routed gradients
onto the input one stride phase at a time: elementwise work that XLA fuses, and one
interleaving copy.
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


def _first_max_gradients(x, y, grad_y, window, strides, pads) -> list[jax.Array]:
    """Per window offset, the output gradient where that offset holds the window's first max.

    Returns kh * kw arrays [N, OH, OW, C] (offsets row-major): select-and-scatter's routing.
    """
    zero = jnp.zeros((), grad_y.dtype)
    taken = jnp.zeros(y.shape, bool)
    routed = []
    for view in _windows(x, window, strides, pads, y.shape[1:3]):
        first_max = (view == y) & ~taken
        taken = taken | first_max
        routed.append(jnp.where(first_max, grad_y, zero))
    return routed


def _backward(window, strides, pads, residuals, grad_y):
    """Scatter each offset's routed gradient onto the input, one stride phase at a time.

    Padded input row s * a + p receives from window row offsets i = p + s * m of output row
    a - m; so each of the sh * sw phases (p, q) is a sum of shifted [N, OH, OW, C] arrays,
    and interleaving the phases gives the whole gradient without a scatter.
    """
    x, y = residuals
    (kh, kw), (sh, sw), (oh, ow) = window, strides, y.shape[1:3]
    N, C = x.shape[0], x.shape[3]
    height, width = (size + low + high
                     for size, (low, high) in zip(x.shape[1:3], pads, strict=True))
    rows, cols = -(-height // sh), -(-width // sw)  # per phase
    routed = _first_max_gradients(x, y, grad_y, window, strides, pads)
    zero = jnp.zeros((), grad_y.dtype)
    phases = []
    for p in range(sh):
        for q in range(sw):
            phase = jnp.zeros((N, rows, cols, C), grad_y.dtype)
            for m in range(len(range(p, kh, sh))):
                for n in range(len(range(q, kw, sw))):
                    shifted = lax.pad(routed[(p + sh * m) * kw + q + sw * n], zero, (
                        (0, 0, 0), (m, rows - oh - m, 0), (n, cols - ow - n, 0), (0, 0, 0)))
                    phase = phase + shifted
            phases.append(phase)
    interleaved = jnp.stack(phases, axis=3).reshape(N, rows, cols, sh, sw, C)
    grad_padded = jnp.transpose(interleaved, (0, 1, 3, 2, 4, 5)).reshape(
        N, rows * sh, cols * sw, C)
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
