"""The GTrXL memory pytree and the episode/window rules that decide who may attend to whom.

Every leaf of the memory has the batch on axis 0 (as every core state in gtrxl_jax does), so
actors and learners gather, reset and shard the state of any core with one tree_map.
"""

import chex
import jax
import jax.numpy as jnp
from flax import struct

from gtrxl_jax.nn.config import GTrXLConfig, resolve_dtype


@struct.dataclass
class KVCache:
    """Keys and values of the memory under the acting parameters (an acting-only cache).

    One array per layer, head-major, so that a layer's attention reads its keys and values
    in place: no per-step slice or transpose copy of the whole cache.

    Attributes:
      keys: L arrays [B, H, M, Dh], layer l's attention keys of the memory slots.
      values: L arrays [B, H, M, Dh], layer l's attention values of the memory slots.
    """

    keys: tuple[jax.Array, ...]
    values: tuple[jax.Array, ...]


@struct.dataclass
class Memory:
    """The transformer memory, carried explicitly between calls of the core.

    Attributes:
      states: [B, L, M, D] float32; per layer, its inputs at the M most recent earlier
        steps, oldest first (slot M-1 is the step just before the next call's first step).
      valid: [B, M] bool; True where the slot belongs to the current episode.
      cache: None, or the keys and values of `states` under the acting parameters, which
        makes an acting step cost O(d^2 + M d) instead of O(M d^2). The learner passes no
        cache and recomputes keys and values from `states` with its current parameters.
    """

    states: jax.Array
    valid: jax.Array
    cache: KVCache | None = None

    def without_cache(self) -> "Memory":
        """The memory without its acting cache (what a trajectory stores for the learner)."""
        return self.replace(cache=None)


def init_gtrxl_memory(config: GTrXLConfig, batch_size: int, cache: bool = False) -> Memory:
    """An empty memory (no valid slot) for `batch_size` sequences.

    Args:
      config: the core's configuration.
      batch_size: B.
      cache: whether to allocate the acting cache (see `Memory.cache`). Its empty slots are
        never attended to, so a zero cache is consistent with the empty memory.

    Returns:
      Memory with states [B, L, M, D] zeros and valid [B, M] all False.
    """
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}.")
    B, L, M = batch_size, config.num_layers, config.memory_len
    kv_cache = None
    if cache:
        shape = (B, config.num_heads, M, config.resolved_head_dim)
        dtype = resolve_dtype("GTrXLConfig", "dtype", config.dtype)
        zeros = [jnp.zeros(shape, dtype) for _ in range(2 * L)]  # distinct buffers
        kv_cache = KVCache(keys=tuple(zeros[:L]), values=tuple(zeros[L:]))
    return Memory(
        states=jnp.zeros((B, L, M, config.d_model), jnp.float32),
        valid=jnp.zeros((B, M), bool),
        cache=kv_cache,
    )


def episode_ids(valid: jax.Array, first: jax.Array) -> jax.Array:
    """Labels each position of [memory ; segment] with its episode, relative to the memory.

    Valid memory slots belong to episode 0 and invalid ones to -1 (never attended to); a
    segment step belongs to episode k when k episode starts occurred up to and including it.

    Args:
      valid: [B, M] bool, the memory's valid slots.
      first: [B, T] bool, True on an episode's first step.

    Returns:
      [B, M + T] int32 episode labels.
    """
    chex.assert_rank([valid, first], 2)
    memory_ids = jnp.where(valid, 0, -1).astype(jnp.int32)
    segment_ids = jnp.cumsum(first.astype(jnp.int32), axis=1)
    return jnp.concatenate([memory_ids, segment_ids], axis=1)


def attention_mask(ids: jax.Array, memory_len: int) -> jax.Array:
    """Which keys each query may attend to: same episode, within the sliding window.

    A query at segment step i (position M + i of [memory ; segment]) sees key j if and only
    if j lies in [i, M + i] (itself and the M positions before it) and both carry the same
    episode label. This window makes a T-step call equal T single-step calls for any T, M.

    Args:
      ids: [B, M + T] episode labels from `episode_ids`.
      memory_len: M.

    Returns:
      [B, T, M + T] bool mask.
    """
    M = memory_len
    T = ids.shape[1] - M
    query_ids = ids[:, M:]
    same_episode = (ids[:, None, :] == query_ids[:, :, None]) & (ids[:, None, :] >= 0)
    i = jnp.arange(T)[:, None]
    j = jnp.arange(M + T)[None, :]
    in_window = (j >= i) & (j <= i + M)
    return same_episode & in_window[None]


def next_valid(ids: jax.Array, memory_len: int) -> jax.Array:
    """The validity of the memory after the call: the last M positions in the last episode.

    Args:
      ids: [B, M + T] episode labels from `episode_ids`.
      memory_len: M.

    Returns:
      [B, M] bool.
    """
    last_m = ids[:, -memory_len:]
    return (last_m == ids[:, -1:]) & (last_m >= 0)


def shift_in(memory_slots: jax.Array, segment: jax.Array, axis: int = 1) -> jax.Array:
    """Appends a segment along the time axis and keeps the most recent M entries.

    Args:
      memory_slots: [..., M, ...] with time on `axis`, oldest first.
      segment: the new steps, shaped like memory_slots but with T entries on `axis`.
      axis: the time axis.

    Returns:
      memory_slots' shape: the last M of [memory_slots ; segment] along `axis`.
    """
    M = memory_slots.shape[axis]
    joined = jnp.concatenate([memory_slots, segment.astype(memory_slots.dtype)], axis=axis)
    return jax.lax.slice_in_dim(joined, joined.shape[axis] - M, joined.shape[axis], axis=axis)
