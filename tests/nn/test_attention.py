"""Relative multi-head attention against a naive loop written from the Transformer-XL equations."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtrxl_jax.nn.attention import (
    RelativeMultiHeadAttention,
    gather_distances,
    relative_shift,
    sinusoid_embedding,
)
from gtrxl_jax.nn.memory import attention_mask, episode_ids


def naive_attention(p, segment, memory, mask, M):
    """Loops over batch, heads, queries and keys: score = (q+u).k_j + (q+v).W_R R_{i-j}."""
    B, T, D = segment.shape
    H, Dh = p["u"].shape
    context = np.concatenate([memory, segment], axis=1)  # [B, M+T, D]
    R = np.asarray(sinusoid_embedding(M + 1, D))
    out = np.zeros((B, T, D))
    for b in range(B):
        for i in range(T):
            q = segment[b, i] @ p["query"].reshape(D, H * Dh)
            for h in range(H):
                qh = q[h * Dh : (h + 1) * Dh]
                scores, values = [], []
                for j in range(M + T):
                    if not mask[b, i, j]:
                        continue
                    k = context[b, j] @ p["key_value"][:, 0, h]
                    v = context[b, j] @ p["key_value"][:, 1, h]
                    r = R[M + i - j] @ p["position"][:, h]
                    scores.append(((qh + p["u"][h]) @ k + (qh + p["v"][h]) @ r) / np.sqrt(Dh))
                    values.append(v)
                w = np.exp(np.array(scores) - max(scores))
                w /= w.sum()
                out[b, i] += (w @ np.array(values)) @ p["output"][h]
    return out


def test_matches_naive_loop():
    B, T, M, D, H, Dh = 2, 4, 3, 8, 2, 3
    rng = np.random.default_rng(0)
    segment = rng.normal(size=(B, T, D)).astype(np.float32)
    memory = rng.normal(size=(B, M, D)).astype(np.float32)
    valid = np.array([[False, True, True], [True, True, True]])
    first = np.array([[False, False, True, False], [False, False, False, False]])
    mask = np.asarray(attention_mask(episode_ids(jnp.asarray(valid), jnp.asarray(first)), M))
    module = RelativeMultiHeadAttention(num_heads=H, head_dim=Dh, out_dim=D)

    def apply(params, segment, memory, mask):
        kv = module.apply(params, memory, method=module.keys_values)
        return module.apply(params, segment, kv, mask)[0]

    dummy_kv = (jnp.zeros((B, H, M, Dh)), jnp.zeros((B, H, M, Dh)))  # head-major
    params = module.init(jax.random.PRNGKey(0), segment, dummy_kv, mask)
    # Non-zero u and v so the bias terms are exercised.
    params["params"]["u"] = jnp.asarray(rng.normal(size=(H, Dh)), jnp.float32)
    params["params"]["v"] = jnp.asarray(rng.normal(size=(H, Dh)), jnp.float32)
    ours = apply(params, segment, memory, mask)
    p = {
        name: np.asarray(leaf["kernel"] if isinstance(leaf, dict) else leaf)
        for name, leaf in params["params"].items()
    }
    np.testing.assert_allclose(ours, naive_attention(p, segment, memory, mask, M), atol=1e-4)


def test_relative_shift_places_distances_on_keys():
    T, M = 3, 2
    S = M + T
    by_distance = jnp.arange(T * (M + 1), dtype=jnp.float32).reshape(T, M + 1)
    shifted = relative_shift(by_distance, S)
    for i in range(T):
        for j in range(i, i + M + 1):
            assert shifted[i, j] == by_distance[i, M + i - j]


def test_gather_distances_matches_relative_shift_on_an_ordered_memory():
    """One query over an oldest-first memory: slot j is M - j steps back, itself 0."""
    B, H, M = 2, 3, 5
    by_distance = jax.random.normal(jax.random.PRNGKey(0), (B, H, 1, M + 1))
    ordered = jnp.broadcast_to(M - jnp.arange(M), (B, M))
    np.testing.assert_array_equal(
        gather_distances(by_distance, ordered), relative_shift(by_distance, M + 1)
    )
    ring = jnp.array([[1, 5, 4, 3, 2], [3, 2, 1, 5, 4]])  # ring positions 1 and 3
    gathered = gather_distances(by_distance, ring)
    for b in range(B):
        np.testing.assert_array_equal(gathered[b, :, 0, :M], by_distance[b, :, 0][:, ring[b]])
        np.testing.assert_array_equal(gathered[b, :, 0, M], by_distance[b, :, 0, 0])


def test_memory_distances_need_one_step():
    attention = RelativeMultiHeadAttention(num_heads=2, head_dim=4, out_dim=8)
    B, T, M = 1, 2, 3
    segment = jnp.zeros((B, T, 8))
    memory_kv = (jnp.zeros((B, 2, M, 4)), jnp.zeros((B, 2, M, 4)))
    mask = jnp.ones((B, T, M + T), bool)
    params = attention.init(jax.random.PRNGKey(0), segment, memory_kv, mask)
    with pytest.raises(ValueError, match="one-step segment"):
        attention.apply(params, segment, memory_kv, mask, jnp.ones((B, M), jnp.int32))


def test_mask_window_and_episodes():
    M = 2
    valid = jnp.array([[True, True]])
    first = jnp.array([[False, False, True, False]])
    mask = np.asarray(attention_mask(episode_ids(valid, first), M))[0]
    expected = np.array(
        [
            # keys: m0 m1 s0 s1 s2 s3
            [1, 1, 1, 0, 0, 0],  # s0 sees the two memory slots and itself
            [0, 1, 1, 1, 0, 0],  # s1: window of M=2 back
            [0, 0, 0, 0, 1, 0],  # s2 starts an episode: only itself
            [0, 0, 0, 0, 1, 1],
        ],
        bool,
    )
    np.testing.assert_array_equal(mask, expected)
