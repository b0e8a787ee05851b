"""Relative multi-head attention over [memory ; segment] (Transformer-XL, Dai et al. 2019).

Transformer-XL (arXiv:1901.02860, section 3.3) scores query i against key j as
  (q_i + u) . k_j  +  (q_i + v) . r_{i-j},   r_delta = W_R R_delta,
with R the sinusoidal embedding of the distance delta and learned biases u, v (here one pair
per layer, starting at 0; Transformer-XL's code shares them across layers and draws them
from N(0, 0.02)). The sliding
window of gtrxl_jax (see memory.attention_mask) only admits delta in [0, M], so only M + 1
relative embeddings are ever projected. The memory's keys are oldest first, or (one query,
the acting step) in any order given by each slot's distance to the query.
"""

import functools
import operator

import jax
import jax.numpy as jnp
import numpy as np
from flax import linen as nn

from gtrxl_jax.nn.precision import dense_matmul, dense_options

# Score and value matmuls: compute-dtype inputs, float32 accumulation and result.
_matmul = functools.partial(jnp.einsum, preferred_element_type=jnp.float32)


def sinusoid_embedding(num_positions: int, width: int) -> jax.Array:
    """Sinusoidal embeddings of the distances 0 .. num_positions - 1.

    Computed with NumPy when traced, so a jitted core embeds it as a constant instead of
    evaluating M + 1 sines and cosines per call.

    Args:
      num_positions: how many distances (M + 1).
      width: embedding width (even).

    Returns:
      [num_positions, width] float32: [sin(delta * w_k) ; cos(delta * w_k)],
      w_k = 10000^(-2k / width).
    """
    inv_freq = 1.0 / (10000.0 ** (np.arange(0, width, 2, dtype=np.float32) / width))
    angles = np.arange(num_positions, dtype=np.float32)[:, None] * inv_freq[None, :]
    embedding = np.concatenate([np.sin(angles), np.cos(angles)], axis=-1)[:, :width]
    return jnp.asarray(embedding, jnp.float32)


def relative_shift(scores_by_distance: jax.Array, num_keys: int) -> jax.Array:
    """Lays scores indexed by distance onto the key axis, without a gather.

    Query i (at position M + i of [memory ; segment]) sits at distance delta = M + i - j from
    key j. Reversing the distance axis gives k = j - i, then each row is skewed right by i
    with the pad-and-reshape trick of Transformer-XL.

    Args:
      scores_by_distance: [..., T, M + 1], entry [i, delta].
      num_keys: S = M + T.

    Returns:
      [..., T, S] with entry [i, j] = scores_by_distance[i, M + i - j] for i <= j <= M + i.
      Entries outside that band hold arbitrary values and must be masked.
    """
    *lead, T, num_distances = scores_by_distance.shape
    by_offset = jnp.flip(scores_by_distance, axis=-1)  # [..., T, M + 1], entry [i, j - i]
    padded = jnp.pad(by_offset, [(0, 0)] * len(lead) + [(0, 0), (0, num_keys + 1 - num_distances)])
    flat = padded.reshape(*lead, T * (num_keys + 1))[..., : T * num_keys]
    return flat.reshape(*lead, T, num_keys)


def gather_distances(scores_by_distance: jax.Array, memory_distances: jax.Array) -> jax.Array:
    """Lays one query's scores indexed by distance onto [memory ; the query itself].

    Args:
      scores_by_distance: [B, H, 1, M + 1], entry [..., delta].
      memory_distances: [B, M] int in [1, M], each memory slot's distance to the query.

    Returns:
      [B, H, 1, M + 1]: entry j < M is scores_by_distance[b, h, 0, memory_distances[b, j]];
      entry M (the query's own key) is distance 0.
    """
    own = jnp.zeros_like(memory_distances[:, :1])
    distances = jnp.concatenate([memory_distances, own], axis=1)  # [B, M + 1]
    return jax.vmap(lambda scores, d: jnp.take(scores, d, axis=-1))(scores_by_distance, distances)


class RelativeMultiHeadAttention(nn.Module):
    """Multi-head attention of a segment over [memory ; segment] with relative positions.

    Keys and values are head-major, [B, H, S, Dh]: the score and value matmuls read them
    without a transpose, so an acting step reads its cached memory once and copies none of
    it (there, the memory's keys and the segment's are scored apart, never concatenated).

    Attributes:
      num_heads: H.
      head_dim: Dh.
      out_dim: D, width of the output projection.
      dtype: compute dtype of the projections and score matmuls, which accumulate in
        float32; softmax runs in float32.
      param_dtype: parameter dtype.
    """

    num_heads: int
    head_dim: int
    out_dim: int
    dtype: jnp.dtype = jnp.float32
    param_dtype: jnp.dtype = jnp.float32

    def setup(self):
        """Declares the q, k/v, position and output projections and the biases u, v."""
        dense = dict(use_bias=False, **dense_options(self.dtype, self.param_dtype))
        heads = (self.num_heads, self.head_dim)
        self.query = nn.DenseGeneral(heads, name="query", **dense)
        self.key_value = nn.DenseGeneral((2, *heads), name="key_value", **dense)
        self.position = nn.DenseGeneral(heads, name="position", **dense)
        self.output = nn.DenseGeneral(self.out_dim, axis=(-2, -1), name="output", **dense)
        self.u = self.param("u", nn.initializers.zeros, heads, self.param_dtype)
        self.v = self.param("v", nn.initializers.zeros, heads, self.param_dtype)

    def keys_values(
        self,
        inputs: jax.Array,
        input_scale: jax.Array | None = None,
        input_shift: jax.Array | None = None,
    ) -> tuple[jax.Array, jax.Array]:
        """Projects inputs [B, S, D] into keys and values, each [B, H, S, Dh] (compute dtype).

        With `input_scale` and `input_shift` [D] it projects inputs * scale + shift, with
        both folded into the projection: (x s + t) W = x (diag(s) W) + t W. For inputs that
        are never differentiated, the gradients of s and t then come out of the kernel's own
        gradient matmul, with no gradient of the [B, S, D] inputs to compute and sum.
        """
        if input_scale is None:
            kv = self.key_value(inputs)  # [B, S, 2, H, Dh]
        else:
            kernel = self.key_value.variables["params"]["kernel"]  # [D, 2, H, Dh]
            folded = input_scale[:, None, None, None] * kernel
            kv = dense_matmul(inputs.astype(self.dtype), folded.astype(self.dtype), 1)
            kv = kv + jnp.tensordot(input_shift, kernel, 1).astype(jnp.float32)
        kv = kv.astype(self.dtype)
        kv = jnp.transpose(kv, (2, 0, 3, 1, 4))  # [2, B, H, S, Dh]
        return kv[0], kv[1]

    def __call__(
        self,
        segment: jax.Array,
        memory_kv: tuple[jax.Array, jax.Array],
        mask: jax.Array,
        memory_distances: jax.Array | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Attends from each segment step over the memory and the segment.

        Args:
          segment: [B, T, D] the current steps' inputs (already layer-normed if pre-LN).
          memory_kv: (keys, values) of the memory, each [B, H, M, Dh]: projected from the
            memory states by `keys_values`, or read from the acting cache.
          mask: [B, T, M + T] bool, True where query i may attend to key j.
          memory_distances: None if the memory slots are oldest first (slot j is M - j + i
            steps before query i); else [B, M] int, each slot's distance to the segment's
            single step (T = 1), for a memory in ring order.

        Returns:
          outputs [B, T, D] float32, and the segment's own (keys, values), each
          [B, H, T, Dh] in the compute dtype.
        """
        k_mem, v_mem = (x.astype(self.dtype) for x in memory_kv)
        M, T = k_mem.shape[2], segment.shape[1]
        if memory_distances is not None and T != 1:
            raise ValueError(f"memory_distances need a one-step segment (T = 1), got T = {T}.")
        q = jnp.swapaxes(self.query(segment), 1, 2)  # [B, H, T, Dh]
        k_seg, v_seg = self.keys_values(segment)
        positions = sinusoid_embedding(M + 1, segment.shape[-1]).astype(self.dtype)
        r = self.position(positions).astype(self.dtype)  # W_R R: [M + 1, H, Dh]

        q_u = (q + self.u[:, None]).astype(self.dtype)
        q_v = (q + self.v[:, None]).astype(self.dtype)
        by_distance = _matmul("bhid,rhd->bhir", q_v, r)  # [B, H, T, M + 1]
        if memory_distances is None:
            # One key axis [memory ; segment]: copying the keys and values ([B, H, S, Dh])
            # costs less than concatenating the scores and slicing the weights ([B, H, T, S],
            # float32), forward and backward.
            keys = (jnp.concatenate([k_mem, k_seg], axis=2),)
            values = (jnp.concatenate([v_mem, v_seg], axis=2),)
            position = relative_shift(by_distance, M + T)
        else:
            # The acting step: the cached memory is scored and read in place, never copied.
            keys, values = (k_mem, k_seg), (v_mem, v_seg)
            position = gather_distances(by_distance, memory_distances)
        content = jnp.concatenate([_matmul("bhid,bhjd->bhij", q_u, k) for k in keys], -1)
        logits = (content + position) / jnp.sqrt(self.head_dim)  # [B, H, T, M + T]
        logits = jnp.where(mask[:, None], logits, jnp.finfo(jnp.float32).min)
        weights = jax.nn.softmax(logits, axis=-1)
        # Kept only when the caller asks (`apply(..., mutable="intermediates")`): what each
        # query attends to, [B, H, T, M + T], for analysis and plots; free otherwise.
        self.sow("intermediates", "weights", weights)
        weights = weights.astype(self.dtype)
        splits = np.cumsum([v.shape[2] for v in values[:-1]])
        attended = functools.reduce(operator.add, (
            _matmul("bhij,bhjd->bihd", w, v)
            for w, v in zip(jnp.split(weights, splits, axis=-1), values, strict=True)))
        return self.output(attended.astype(self.dtype)), (k_seg, v_seg)
