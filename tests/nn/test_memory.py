"""The ring-buffer memory: its helpers against NumPy, wrap-around, resets, in-place acting."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gtrxl_jax as gx
from gtrxl_jax.nn.memory import ring_read, ring_write, roll_rows, slot_distances
from tests.nn.helpers import init_core, jitted_apply, random_sequence, run_chunks


def config(memory_len, **kw):
    return gx.GTrXLConfig(num_layers=2, d_model=16, num_heads=2, memory_len=memory_len, **kw)


def assert_memories_close(a, b, atol=2e-5):
    assert jax.tree.structure(a) == jax.tree.structure(b)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_allclose(x, y, atol=atol, rtol=1e-5)


def test_ring_helpers_match_numpy():
    B, M = 3, 5
    slots = np.arange(B * 2 * M * 4, dtype=np.float32).reshape(B, 2, M, 4)
    position = np.array([0, 2, 4], np.int32)
    rows = np.arange(B)
    rolled = roll_rows(slots, position, axis=2)
    for b in rows:
        np.testing.assert_array_equal(rolled[b], np.roll(slots[b], -position[b], axis=1))
    read = ring_read(slots, position, axis=2)
    np.testing.assert_array_equal(read[:, :, 0], slots[rows, :, position])
    written = ring_write(slots, -np.ones((B, 2, 1, 4), np.float32), position, axis=2)
    expected = slots.copy()
    expected[rows, :, position] = -1
    np.testing.assert_array_equal(written, expected)
    distances = slot_distances(jnp.asarray(position), M)
    for b in rows:  # the slot before the position is 1 step back, the position's slot M
        expected_distances = [(position[b] - 1 - j) % M + 1 for j in range(M)]
        np.testing.assert_array_equal(distances[b], expected_distances)


@pytest.mark.parametrize("cache", [False, True], ids=["uncached", "cached"])
@pytest.mark.parametrize("memory_len", [1, 3])
def test_acting_wraps_around_the_ring_many_times(cache, memory_len):
    """5M + 2 donated one-step calls, with episodes starting while the ring has wrapped,
    equal one unroll; the ring ends at position N mod M and holds the unroll's memory."""
    cfg, N, B = config(memory_len), 5 * memory_len + 2, 3
    core, params, inputs, _, memory = init_core(cfg, T=N, B=B)
    apply = jitted_apply(core)
    first = jnp.zeros((N, B), bool).at[0].set(True).at[N - 2, 0].set(True)
    first = first.at[2 * memory_len + 1, 1].set(True)
    expected, expected_memory = apply(params, inputs, first, memory)
    memory = gx.init_memory(cfg, B, cache=cache)
    step = jax.jit(core.apply, donate_argnums=3)
    outputs = []
    for t in range(N):
        out, memory = step(params, inputs[t : t + 1], first[t : t + 1], memory)
        outputs.append(out)
    np.testing.assert_allclose(jnp.concatenate(outputs), expected, atol=2e-5, rtol=1e-5)
    np.testing.assert_array_equal(memory.position, np.full(B, N % memory_len))
    assert_memories_close(memory.without_cache().in_order(), expected_memory)


def test_in_order_is_the_same_memory_oldest_first():
    """in_order of a ring equals the oldest-first memory of the same steps, leaves an ordered
    memory as it is, and commutes with refresh_cache."""
    M, N, B = 4, 7, 2
    core, params, inputs, first, memory = init_core(config(M), T=N, B=B)
    apply = jitted_apply(core)
    _, expected = apply(params, inputs, first, memory)
    _, ring = run_chunks(core, params, inputs, first, memory, [1] * N)
    np.testing.assert_array_equal(ring.position, [N % M] * B)
    ordered = ring.in_order()
    np.testing.assert_array_equal(ordered.position, [0] * B)
    assert_memories_close(ordered, expected)
    assert_memories_close(ordered.in_order(), ordered)
    refresh = functools.partial(apply, params, method=gx.GTrXL.refresh_cache)
    assert_memories_close(refresh(ring).in_order(), refresh(ordered))


def test_rows_at_different_ring_positions_act_independently():
    """Rows gathered (one tree_map) from memories at different ring positions act as they
    would alone, and the learner's unroll of them agrees."""
    cfg, B = config(3), 2
    core, params, inputs, first, _ = init_core(cfg, T=5, B=B)
    apply = jitted_apply(core)
    cached = gx.init_memory(cfg, B, cache=True)
    _, a = run_chunks(core, params, inputs[:4], first[:4], cached, [1] * 4)
    _, b = run_chunks(core, params, inputs, first, cached, [1] * 5)
    mixed = jax.tree.map(lambda x, y: jnp.concatenate([x[:1], y[1:]]), a, b)
    np.testing.assert_array_equal(mixed.position, [1, 2])
    x, f = random_sequence(6, B, cfg.d_model, seed=5)
    acted, _ = run_chunks(core, params, x, f, mixed, [1] * 6)
    alone_a, _ = run_chunks(core, params, x, f, a, [1] * 6)
    alone_b, _ = run_chunks(core, params, x, f, b, [1] * 6)
    np.testing.assert_allclose(acted[:, 0], alone_a[:, 0], atol=1e-6)
    np.testing.assert_allclose(acted[:, 1], alone_b[:, 1], atol=1e-6)
    learned, _ = apply(params, x, f, mixed.without_cache())
    np.testing.assert_allclose(learned, acted, atol=2e-5, rtol=1e-5)


def test_cached_acting_beyond_m_steps_equals_the_learner_unroll_across_updates():
    """As an actor runs: from a wrapped ring, act N > M cached steps; the learner's unroll
    from the same start state (oldest first, no cache) agrees. Then the parameters change,
    the cache is refreshed, and the same holds under the new parameters."""
    cfg, B, N = config(3), 3, 8
    core, params, warm_inputs, warm_first, _ = init_core(cfg, T=5, B=B)
    apply = jitted_apply(core)
    new_params = jax.jit(core.init)(jax.random.PRNGKey(42), warm_inputs, warm_first,
                                    gx.init_memory(cfg, B))
    step = jax.jit(core.apply, donate_argnums=3)
    refresh = functools.partial(apply, method=gx.GTrXL.refresh_cache)
    memory = gx.init_memory(cfg, B, cache=True)
    for t in range(5):
        _, memory = step(params, warm_inputs[t : t + 1], warm_first[t : t + 1], memory)
    for seed, version in enumerate((params, new_params)):
        memory = refresh(version, memory)
        start = memory.without_cache().in_order()
        inputs, first = random_sequence(N, B, cfg.d_model, seed=seed)
        acted = []
        for t in range(N):
            out, memory = step(version, inputs[t : t + 1], first[t : t + 1], memory)
            acted.append(out)
        learned, learned_memory = apply(version, inputs, first, start)
        np.testing.assert_allclose(jnp.concatenate(acted), learned, atol=2e-5, rtol=1e-5)
        assert_memories_close(memory.without_cache().in_order(), learned_memory)


def test_donated_acting_step_copies_no_memory():
    """The cached step aliases every memory leaf to its output, and its temporary buffers
    grow with the memory's length by less than one layer's keys would: XLA writes the step
    in place, copying no cache. (Growth, not size: a GPU's step also holds cuBLAS's
    fixed 32 MiB workspace.)"""
    def donated_step(memory_len: int):
        cfg, B = gx.GTrXLConfig(num_layers=2, d_model=32, num_heads=4,
                                memory_len=memory_len), 16
        core, params, inputs, first, _ = init_core(cfg, T=1, B=B)
        memory = gx.init_memory(cfg, B, cache=True)
        step = jax.jit(core.apply, donate_argnums=3).lower(params, inputs, first, memory)
        return step.compile().memory_analysis(), memory

    short, short_memory = donated_step(64)
    long, long_memory = donated_step(256)
    for stats, memory in ((short, short_memory), (long, long_memory)):
        assert stats.alias_size_in_bytes == sum(leaf.nbytes for leaf in jax.tree.leaves(memory))
    one_layer_keys_growth = long_memory.cache.keys[0].nbytes - short_memory.cache.keys[0].nbytes
    assert long.temp_size_in_bytes - short.temp_size_in_bytes < one_layer_keys_growth
