"""The GTrXL memory pytree and the episode/window rules that decide who may attend to whom.

Every leaf of the memory has the batch on axis 0 (as every core state in gtrxl_jax does), so
actors and learners gather, reset and shard the state of any core with one tree_map.

The memory is a ring buffer: a one-step call (acting) writes its step into one slot per row,
in place when the jitted step donates the memory, instead of shifting all M slots. A
multi-step call (learning) reads the memory oldest first (`Memory.in_order`).
"""

import functools

import chex
import jax
import jax.numpy as jnp
from flax import struct

from gtrxl_jax.nn.config import GTrXLConfig, check_positive_int, resolve_dtype


@struct.dataclass
class KVCache:
    """Keys and values of the memory under the acting parameters (an acting-only cache).

    One array per layer, head-major, so that a layer's attention reads its keys and values
    in place: no per-step slice or transpose copy of the whole cache. Slots are in the
    memory's ring order.

    The newest slot's keys and values wait in `pending_keys` and `pending_values`; in `keys`
    and `values`, that slot (position - 1) may still hold an older step. An acting step
    first writes the pending ones into their slot (`flush`), then reads the cache, then
    hands on its own step's keys and values as the new pending ones. Every write to the
    cache thus comes before its reads, so XLA updates a donated cache in place; a write
    after the reads would make XLA copy the whole cache first.

    Attributes:
      keys: L arrays [B, H, M, Dh], layer l's attention keys of the memory slots.
      values: L arrays [B, H, M, Dh], layer l's attention values of the memory slots.
      pending_keys: L arrays [B, H, 1, Dh], layer l's keys of the newest slot.
      pending_values: L arrays [B, H, 1, Dh], layer l's values of the newest slot.
    """

    keys: tuple[jax.Array, ...]
    values: tuple[jax.Array, ...]
    pending_keys: tuple[jax.Array, ...]
    pending_values: tuple[jax.Array, ...]

    def flush(self, position: jax.Array) -> "KVCache":
        """The cache with its pending keys and values written into the newest slot.

        Args:
          position: [B] int32, the memory's ring position (the newest slot is position - 1).

        Returns:
          A cache whose keys and values hold every slot's own step.
        """
        M = self.keys[0].shape[2]
        write = functools.partial(ring_write, position=(position - 1) % M, axis=2)
        return self.replace(
            keys=tuple(map(write, self.keys, self.pending_keys)),
            values=tuple(map(write, self.values, self.pending_values)),
        )


@struct.dataclass
class Memory:
    """The transformer memory, carried explicitly between calls of the core.

    The M slots form a ring per row: slot position[b] holds row b's oldest step, and the
    following slots (mod M) ever more recent ones, up to slot position[b] - 1, the step just
    before the next call's first step. With position 0 the slots are oldest first.

    Attributes:
      states: [B, L, M, D] float32; per layer, its inputs at the M most recent earlier
        steps, in ring order.
      valid: [B, M] bool; True where the slot belongs to the current episode (ring order).
      position: [B] int32 in [0, M); the ring position: the oldest slot, which the next
        step overwrites. All rows are equal unless rows were gathered from other memories.
      cache: None, or the keys and values of `states` under the acting parameters, which
        makes an acting step cost O(d^2 + M d) instead of O(M d^2). The learner passes no
        cache and recomputes keys and values from `states` with its current parameters.
    """

    states: jax.Array
    valid: jax.Array
    position: jax.Array
    cache: KVCache | None = None

    def without_cache(self) -> "Memory":
        """The memory without its acting cache (the form a learner takes)."""
        return self.replace(cache=None)

    def snapshot(self) -> "Memory":
        """A copy oldest first and without the acting cache: what a trajectory stores.

        Part of the protocol of every core state (`gtrxl_jax.nn.cores.CoreState`). The copy
        has buffers of its own, so it survives a jitted step that donates the memory.
        """
        return self.without_cache().in_order()

    def flushed(self) -> "Memory":
        """The memory with its cache's pending keys and values written (see `KVCache`)."""
        if self.cache is None:
            return self
        return self.replace(cache=self.cache.flush(self.position))

    def in_order(self) -> "Memory":
        """The same memory with every row's slots oldest first (position 0).

        A multi-step call reads the memory this way; actors hand it to the learner this way.
        It copies every leaf (states, valid and any cache), so acting calls it only once per
        trajectory, never per step.
        """
        memory = self.flushed()
        roll = functools.partial(roll_rows, shift=memory.position)
        cache = memory.cache
        if cache is not None:
            cache = cache.replace(
                keys=tuple(roll(k, axis=2) for k in cache.keys),
                values=tuple(roll(v, axis=2) for v in cache.values),
            )
        return Memory(
            states=roll(memory.states, axis=2),
            valid=roll(memory.valid, axis=1),
            position=jnp.zeros_like(memory.position),
            cache=cache,
        )


def init_gtrxl_memory(config: GTrXLConfig, batch_size: int, cache: bool = False) -> Memory:
    """An empty memory (no valid slot) for `batch_size` sequences.

    Args:
      config: the core's configuration.
      batch_size: B.
      cache: whether to allocate the acting cache (see `Memory.cache`). Its empty slots are
        never attended to, so a zero cache is consistent with the empty memory.

    Returns:
      Memory with states [B, L, M, D] zeros, valid [B, M] all False and position [B] zeros.
    """
    check_positive_int("batch_size", batch_size)
    B, L, M = batch_size, config.num_layers, config.memory_len
    kv_cache = None
    if cache:
        H, Dh = config.num_heads, config.resolved_head_dim
        dtype = resolve_dtype("GTrXLConfig", "dtype", config.dtype)

        def zeros(slots: int) -> tuple[jax.Array, ...]:
            return tuple(jnp.zeros((B, H, slots, Dh), dtype) for _ in range(L))  # distinct

        kv_cache = KVCache(
            keys=zeros(M), values=zeros(M), pending_keys=zeros(1), pending_values=zeros(1)
        )
    return Memory(
        states=jnp.zeros((B, L, M, config.d_model), jnp.float32),
        valid=jnp.zeros((B, M), bool),
        position=jnp.zeros((B,), jnp.int32),
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


def slot_distances(position: jax.Array, memory_len: int) -> jax.Array:
    """How many steps before the next step each memory slot was written, in ring order.

    Args:
      position: [B] int32, the memory's ring position (its oldest slot).
      memory_len: M.

    Returns:
      [B, M] int32 in [1, M]: slot position - 1 (mod M) is 1 step back, slot position M.
    """
    slots = jnp.arange(memory_len, dtype=position.dtype)
    return (position[:, None] - 1 - slots[None, :]) % memory_len + 1


def roll_rows(slots: jax.Array, shift: jax.Array, axis: int) -> jax.Array:
    """Rolls each row left along `axis`: row b's entry k becomes its slot (shift[b] + k) mod M.

    Args:
      slots: [B, ..., M, ...] with the M slots on `axis` (>= 1).
      shift: [B] int, per row.
      axis: the slot axis.

    Returns:
      slots' shape; with shift = the ring position, each row oldest first.
    """
    return jax.vmap(lambda row, s: jnp.roll(row, -s, axis=axis - 1))(slots, shift)


def ring_read(slots: jax.Array, position: jax.Array, axis: int) -> jax.Array:
    """Reads slot position[b] of each row b.

    Args:
      slots: [B, ..., M, ...] with the M slots on `axis` (>= 1).
      position: [B] int32 in [0, M).
      axis: the slot axis.

    Returns:
      slots' shape with one entry on `axis`.
    """
    return jax.vmap(lambda row, p: jax.lax.dynamic_slice_in_dim(row, p, 1, axis - 1))(
        slots, position
    )


def ring_write(slots: jax.Array, step: jax.Array, position: jax.Array, axis: int) -> jax.Array:
    """Writes one step into slot position[b] of each row b (in place if `slots` is donated).

    Args:
      slots: [B, ..., M, ...] with the M slots on `axis` (>= 1).
      step: slots' shape with one entry on `axis`; cast to slots' dtype.
      position: [B] int32 in [0, M), the slot of each row to overwrite.
      axis: the slot axis.

    Returns:
      slots' shape and dtype.
    """

    def write_row(row, new, p):
        return jax.lax.dynamic_update_slice_in_dim(row, new.astype(row.dtype), p, axis - 1)

    return jax.vmap(write_row)(slots, step, position)


def shift_in(memory_slots: jax.Array, segment: jax.Array, axis: int) -> jax.Array:
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


def next_memory(
    memory: Memory,
    ids: jax.Array,
    block_inputs: jax.Array,
    segment_kv: tuple[tuple[jax.Array, ...], tuple[jax.Array, ...]] | None,
) -> Memory:
    """The memory after a call: the last M steps of [memory ; segment], in the last episode.

    One step (T = 1) overwrites each row's oldest slot of the states and advances the ring
    position; its keys and values become the cache's pending ones. So an acting step writes
    O(L d) per row, not the whole memory. T > 1 steps are shifted in, and need `memory`
    oldest first (`Memory.in_order`); the result is oldest first too.

    Args:
      memory: the memory the call read, its cache flushed (`Memory.flushed`).
      ids: [B, M + T] episode labels from `episode_ids`.
      block_inputs: [B, L, T, D] float32, each block's input at the segment's steps.
      segment_kv: None if the memory has no cache; else the segment's (keys, values), each L
        arrays [B, H, T, Dh].

    Returns:
      Memory of the same shapes, with a cache if `memory` has one.
    """
    M = memory.valid.shape[1]
    one_step = block_inputs.shape[2] == 1
    in_last_episode = (ids == ids[:, -1:]) & (ids >= 0)  # [B, M + T]
    if one_step:
        write = functools.partial(ring_write, position=memory.position)
        valid = write(in_last_episode[:, :M], in_last_episode[:, M:], axis=1)
        position = (memory.position + 1) % M
    else:
        write = shift_in
        valid = in_last_episode[:, -M:]
        position = memory.position
    cache = memory.cache
    if cache is not None:
        keys, values = segment_kv
        if not one_step:
            shift = functools.partial(shift_in, axis=2)
            cache = cache.replace(
                keys=tuple(map(shift, cache.keys, keys)),
                values=tuple(map(shift, cache.values, values)),
            )
        cache = cache.replace(
            pending_keys=tuple(k[:, :, -1:] for k in keys),
            pending_values=tuple(v[:, :, -1:] for v in values),
        )
    return Memory(
        states=write(memory.states, block_inputs, axis=2),
        valid=valid,
        position=position,
        cache=cache,
    )
