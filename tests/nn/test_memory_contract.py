"""The central property: a T-step unroll equals any chunking of it, carrying the memory."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import gtrxl_jax as gx
from tests.nn.helpers import init_core, jitted_apply, random_sequence, run_chunks

ALL_CORES = [("trxl", "gru"), ("trxl_i", "gru")] + [("gtrxl", g) for g in gx.GATES]


def small_config(variant="gtrxl", gate="gru", memory_len=4, num_layers=2):
    return gx.GTrXLConfig(
        num_layers=num_layers,
        d_model=16,
        num_heads=2,
        memory_len=memory_len,
        variant=variant,
        gate=gate,
    )


# Every core with M < T (the window slides within the unroll); M > T with a post-LN and a
# pre-LN gated core (the memory logic is shared by every variant and gate).
UNROLL_CASES = [(*core, 3) for core in ALL_CORES] + [("trxl", "gru", 12), ("gtrxl", "gru", 12)]


@pytest.mark.parametrize("variant,gate,memory_len", UNROLL_CASES)
def test_unroll_equals_steps_and_chunks(variant, gate, memory_len):
    cfg = small_config(variant, gate, memory_len)
    T = 9
    core, params, inputs, first, memory = init_core(cfg, T=T, B=3)
    apply = jitted_apply(core)
    full, full_memory = apply(params, inputs, first, memory)
    for sizes in ([1] * T, [4, 5], [2, 3, 4], [1, 1, 3, 1, 1, 2]):
        chunked, chunk_memory = run_chunks(core, params, inputs, first, memory, sizes)
        np.testing.assert_allclose(chunked, full, atol=2e-5, rtol=1e-5)
        chunk_memory = chunk_memory.in_order()  # one-step calls leave it in ring order
        np.testing.assert_allclose(chunk_memory.states, full_memory.states, atol=2e-5, rtol=1e-5)
        np.testing.assert_array_equal(chunk_memory.valid, full_memory.valid)


@pytest.mark.parametrize("variant,gate", ALL_CORES)
def test_cached_acting_equals_unroll(variant, gate):
    """Steps that read keys/values from the acting cache equal the learner's unroll."""
    cfg = small_config(variant, gate, memory_len=4)
    T, B = 8, 3
    core, params, inputs, first, memory = init_core(cfg, T=T, B=B)
    apply = jitted_apply(core)
    warm, memory = apply(params, inputs, first, memory)  # a non-empty memory
    inputs2, first2 = random_sequence(T, B, cfg.d_model, seed=7)
    full, full_memory = apply(params, inputs2, first2, memory)
    cached = apply(params, memory, method=gx.GTrXL.refresh_cache)
    steps, step_memory = run_chunks(core, params, inputs2, first2, cached, [1] * T)
    np.testing.assert_allclose(steps, full, atol=2e-5, rtol=1e-5)
    in_order = step_memory.in_order()
    np.testing.assert_allclose(in_order.states, full_memory.states, atol=2e-5, rtol=1e-5)
    # The cache carried by acting equals the one recomputed from the states.
    fresh = apply(params, step_memory.without_cache(), method=gx.GTrXL.refresh_cache)
    carried = step_memory.flushed().cache
    for a, b in zip(jax.tree.leaves(carried), jax.tree.leaves(fresh.cache), strict=True):
        np.testing.assert_allclose(a, b, atol=2e-5, rtol=1e-5)


@pytest.mark.parametrize("variant,gate", [("gtrxl", "gru"), ("trxl", "gru")])
def test_no_attention_across_resets(variant, gate):
    """Outputs from an episode start on do not depend on anything before it."""
    cfg = small_config(variant, gate, memory_len=6)
    T, B = 10, 2
    core, params, inputs, _, memory = init_core(cfg, T=T, B=B)
    apply = jitted_apply(core)
    warm_inputs, warm_first = random_sequence(5, B, cfg.d_model, seed=3)
    _, memory = apply(params, warm_inputs, warm_first, memory)
    first = jnp.zeros((T, B), bool).at[4].set(True)
    out, _ = apply(params, inputs, first, memory)
    changed_inputs = inputs.at[:4].set(jax.random.normal(jax.random.PRNGKey(5), inputs[:4].shape))
    changed_memory = memory.replace(states=-memory.states)
    out2, _ = apply(params, changed_inputs, first, changed_memory)
    np.testing.assert_allclose(out2[4:], out[4:], atol=1e-5)
    assert not np.allclose(out2[:4], out[:4])


def test_causality():
    """Outputs at step t do not depend on inputs after t."""
    cfg = small_config(memory_len=5)
    T = 8
    core, params, inputs, first, memory = init_core(cfg, T=T, B=2)
    apply = jitted_apply(core)
    out, _ = apply(params, inputs, first, memory)
    for t in range(T - 1):
        later_changed = inputs.at[t + 1 :].set(
            jax.random.normal(jax.random.PRNGKey(t), inputs[t + 1 :].shape)
        )
        out2, _ = apply(params, later_changed, first, memory)
        np.testing.assert_allclose(out2[: t + 1], out[: t + 1], atol=1e-6)


def test_sliding_window_span():
    """A query sees exactly its M predecessors: the input M + 1 steps back has no effect."""
    M, T = 3, 8
    cfg = small_config(memory_len=M, num_layers=1)
    core, params, inputs, _, memory = init_core(cfg, T=T, B=1)
    apply = jitted_apply(core)
    first = jnp.zeros((T, 1), bool).at[0].set(True)
    out, _ = apply(params, inputs, first, memory)
    poked = inputs.at[2].add(jax.random.normal(jax.random.PRNGKey(9), inputs[2].shape))
    out2, _ = apply(params, poked, first, memory)
    changed = np.abs(np.asarray(out2 - out)).max(axis=(1, 2)) > 1e-6
    # Step 2 reaches steps 2..2+M with one layer, and no further.
    np.testing.assert_array_equal(changed, [t in range(2, 2 + M + 1) for t in range(T)])


def test_memory_holds_last_inputs_and_validity():
    M, T, B = 4, 6, 2
    cfg = small_config(memory_len=M)
    core, params, inputs, _, memory = init_core(cfg, T=T, B=B)
    apply = jitted_apply(core)
    first = jnp.zeros((T, B), bool).at[0, 0].set(True).at[4, 1].set(True)
    out, new_memory = apply(params, inputs, first, memory)
    # Layer 0's memory holds the raw inputs of the last M steps.
    np.testing.assert_allclose(new_memory.states[:, 0], jnp.swapaxes(inputs[-M:], 0, 1), atol=0)
    # Env 0: one episode since step 0 -> all M slots valid. Env 1: episode started at step 4
    # -> only the last 2 slots; the memory was empty before, so nothing earlier is valid.
    np.testing.assert_array_equal(new_memory.valid, [[True] * 4, [False, False, True, True]])
    # Layer 1's memory holds layer 0's outputs: recompute with a one-layer core.
    assert new_memory.states.shape == (B, 2, M, cfg.d_model)


def test_empty_memory_is_never_attended():
    """With an empty memory, what the memory slots hold does not matter."""
    cfg = small_config(memory_len=5)
    core, params, inputs, first, memory = init_core(cfg, T=4, B=2)
    apply = jitted_apply(core)
    out, _ = apply(params, inputs, first, memory)
    garbage = memory.replace(states=jax.random.normal(jax.random.PRNGKey(4), memory.states.shape))
    out2, _ = apply(params, inputs, first, garbage)
    np.testing.assert_allclose(out2, out, atol=1e-6)


@pytest.mark.parametrize(
    "config",
    [gx.LSTMConfig(hidden_size=8, num_layers=2), gx.FeedForwardConfig(d_model=8)],
    ids=["lstm", "feedforward"],
)
def test_baseline_cores_share_the_contract(config):
    """LSTM and feed-forward cores: same signature, unroll == steps, resets honoured."""
    T, B = 7, 3
    core = gx.make_core(config)
    inputs, first = random_sequence(T, B, 8)
    state = gx.init_memory(config, B)
    params = jax.jit(core.init)(jax.random.PRNGKey(0), inputs, first, state)
    apply = jitted_apply(core)
    full, full_state = apply(params, inputs, first, state)
    for sizes in ([1] * T, [3, 4]):
        chunked, chunk_state = run_chunks(core, params, inputs, first, state, sizes)
        np.testing.assert_allclose(chunked, full, atol=1e-5)
        for a, b in zip(jax.tree.leaves(chunk_state), jax.tree.leaves(full_state), strict=True):
            np.testing.assert_allclose(a, b, atol=1e-5)
    first = jnp.zeros((T, B), bool).at[3].set(True)
    out, _ = apply(params, inputs, first, state)
    out2, _ = apply(params, -inputs.at[3:].set(-inputs[3:]), first, state)
    np.testing.assert_allclose(out2[3:], out[3:], atol=1e-6)


def test_state_leaves_are_batch_major():
    """Every core's state has the batch on axis 0 of every leaf."""
    B = 5
    configs = [small_config(), gx.LSTMConfig(hidden_size=8)]
    for config, cache in itertools.product(configs, [False, True]):
        if cache and not isinstance(config, gx.GTrXLConfig):
            continue
        state = gx.init_memory(config, B, cache=cache)
        assert all(leaf.shape[0] == B for leaf in jax.tree.leaves(state))
