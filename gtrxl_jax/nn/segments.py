"""Runs a core over a long sequence as a lax.scan over segments, the state as the carry."""

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

CoreFn = Callable[[jax.Array, jax.Array, Any], tuple[jax.Array, Any]]


def scan_segments(
    core_fn: CoreFn, x: jax.Array, first: jax.Array, state: Any, segment_len: int | None
) -> tuple[jax.Array, Any]:
    """Applies `core_fn` over N steps in segments of `segment_len` (Transformer-XL style).

    The N // segment_len full segments run as a `lax.scan` whose carry is the core state
    (a GTrXL memory is under stop_gradient inside the core, so gradients stop at segment
    boundaries as in Transformer-XL); any remaining steps (e.g. a trajectory's bootstrap
    step) run in one more call. Compute and activation memory grow linearly in N. The
    outputs equal one call's over all N steps, and so does the state's content; its layout
    may not (a last call of one step leaves a GTrXL memory in ring order, its `position`
    not 0), and the gradients stop at segment boundaries, where one call's would not.

    Args:
      core_fn: (x [T, B, D], first [T, B], state) -> (y [T, B, D'], state), e.g.
        `functools.partial(core.apply, params)`.
      x: [N, B, D] the core's inputs.
      first: [N, B] bool episode starts.
      state: the core state before step 0.
      segment_len: T; None (or T >= N) makes one call over all N steps.

    Returns:
      y [N, B, D'] and the state after step N - 1.
    """
    bad = isinstance(segment_len, bool) or not isinstance(segment_len, int) or segment_len < 1
    if segment_len is not None and bad:
        raise ValueError(f"segment_len must be a positive int or None, got {segment_len!r}.")
    N = x.shape[0]
    if segment_len is None or segment_len >= N:
        return core_fn(x, first, state)
    K, rest = divmod(N, segment_len)

    def segment(state, xs):
        y, state = core_fn(*xs, state)
        return state, y

    def full_segments(a):
        return a[: K * segment_len].reshape(K, segment_len, *a.shape[1:])

    state, y = jax.lax.scan(segment, state, (full_segments(x), full_segments(first)))
    y = y.reshape(K * segment_len, *y.shape[2:])
    if rest:
        y_rest, state = core_fn(x[-rest:], first[-rest:], state)
        y = jnp.concatenate([y, y_rest])
    return y, state
