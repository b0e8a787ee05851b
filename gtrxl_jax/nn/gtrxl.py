"""TrXL, TrXL-I and GTrXL: the transformer memory core (Parisotto et al. 2019, arXiv:1910.06764).

One block l maps its input x (the stream) with two submodules, relative multi-head attention
over [memory ; segment] and a position-wise MLP (the paper's 1x1 temporal convolution):
  TrXL    (canonical, post-LN)        y = LN(x + Sub(x))
  TrXL-I  (identity map reordering)   y = x + ReLU(Sub(LN(x)))
  GTrXL   (gated)                     y = g(x, ReLU(Sub(LN(x))))        (paper eq. 2-4)
The memory of block l holds its raw (un-normalised) inputs at the M previous steps. A one-step
call (acting) reads and writes the memory as a ring buffer; a multi-step call (learning) reads
it oldest first.
"""

import functools

import jax
import jax.numpy as jnp
from flax import linen as nn

from gtrxl_jax.nn.attention import RelativeMultiHeadAttention
from gtrxl_jax.nn.checks import check_sequence, check_state_shapes, check_state_type
from gtrxl_jax.nn.config import GTrXLConfig, resolve_dtype
from gtrxl_jax.nn.gates import Gate
from gtrxl_jax.nn.memory import (
    KVCache,
    Memory,
    attention_mask,
    episode_ids,
    next_memory,
    ring_read,
    slot_distances,
)
from gtrxl_jax.nn.precision import dense_options


class TransformerBlock(nn.Module):
    """One TrXL / TrXL-I / GTrXL block (attention submodule, then MLP submodule)."""

    config: GTrXLConfig

    def setup(self):
        """Declares the two submodules, their layer norms and (GTrXL) their gates."""
        cfg = self.config
        dtype = resolve_dtype("GTrXLConfig", "dtype", cfg.dtype)
        param_dtype = resolve_dtype("GTrXLConfig", "param_dtype", cfg.param_dtype)
        dense = dict(dtype=dtype, param_dtype=param_dtype)
        norm = dict(dtype=jnp.float32, param_dtype=param_dtype)
        self.attention = RelativeMultiHeadAttention(
            cfg.num_heads, cfg.resolved_head_dim, cfg.d_model, **dense
        )
        mlp = dense_options(dtype, param_dtype)
        self.mlp_hidden = nn.Dense(cfg.resolved_d_ff, **mlp)
        self.mlp_output = nn.Dense(cfg.d_model, **mlp)
        self.norm_attention = nn.LayerNorm(**norm)
        self.norm_mlp = nn.LayerNorm(**norm)
        # norm_attention without its scale and bias (no parameters): see memory_keys_values.
        self.standardize = nn.LayerNorm(use_scale=False, use_bias=False, dtype=jnp.float32)
        if cfg.variant == "gtrxl":
            gate = dict(kind=cfg.gate, bias=cfg.resolved_gate_bias,
                        learn_bias=cfg.learn_gate_bias, **dense)
            self.gate_attention = Gate(**gate)
            self.gate_mlp = Gate(**gate)

    @property
    def _pre_norm(self) -> bool:
        return self.config.variant != "trxl"

    def memory_keys_values(self, memory_states: jax.Array) -> tuple[jax.Array, jax.Array]:
        """Keys and values [B, H, M, Dh] of this block's memory states [B, M, D].

        TrXL-I and GTrXL normalise [memory ; segment] alike, with norm_attention. The memory
        is never differentiated, so it is standardised apart and the norm's scale and bias
        are folded into the key/value projection (`RelativeMultiHeadAttention.keys_values`):
        the same keys and values, to round-off, with a cheaper backward pass.
        """
        if not self._pre_norm:
            return self.attention.keys_values(memory_states)
        if self.is_initializing():  # the norm's first call makes its parameters
            return self.attention.keys_values(self.norm_attention(memory_states))
        norm = self.norm_attention.variables["params"]
        return self.attention.keys_values(self.standardize(memory_states), norm["scale"],
                                          norm["bias"])

    def _mlp(self, x: jax.Array) -> jax.Array:
        hidden = nn.relu(self.mlp_hidden(x))
        return self.mlp_output(hidden).astype(jnp.float32)

    def _combine(self, gate: str, x: jax.Array, y: jax.Array) -> jax.Array:
        if self.config.variant == "gtrxl":
            return getattr(self, gate)(x, y)
        return x + y

    def __call__(
        self,
        x: jax.Array,
        memory_kv: tuple[jax.Array, jax.Array],
        mask: jax.Array,
        memory_distances: jax.Array | None = None,
    ) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
        """Applies the block.

        Args:
          x: [B, T, D] float32, the block's input stream.
          memory_kv: keys and values [B, H, M, Dh] of the block's memory.
          mask: [B, T, M + T] attention mask.
          memory_distances: None for a memory oldest first; else [B, M], each slot's
            distance to the single step (T = 1) of a memory in ring order.

        Returns:
          y [B, T, D] float32, and the segment's keys and values [B, H, T, Dh].
        """
        if not self._pre_norm:  # TrXL: y = LN(x + Sub(x)).
            attended, kv = self.attention(x, memory_kv, mask, memory_distances)
            x = self.norm_attention(x + attended.astype(jnp.float32))
            return self.norm_mlp(x + self._mlp(x)), kv
        attended, kv = self.attention(self.norm_attention(x), memory_kv, mask, memory_distances)
        x = self._combine("gate_attention", x, nn.relu(attended.astype(jnp.float32)))
        x = self._combine("gate_mlp", x, nn.relu(self._mlp(self.norm_mlp(x))))
        return x, kv


class GTrXL(nn.Module):
    """The GTrXL core (also TrXL and TrXL-I, by `config.variant`).

    Usage (the same call acts, T = 1, and learns, T steps):
      core = GTrXL(config)
      memory = init_memory(config, batch_size)
      params = core.init(key, inputs, first, memory)
      outputs, memory = core.apply(params, inputs, first, memory)

    Acting with the cache (`init_memory(config, B, cache=True)`) reads the memory's keys and
    values instead of projecting them again; after the parameters change, refresh the cache
    with `core.apply(params, memory, method=GTrXL.refresh_cache)`.

    A one-step call writes its step into the memory's ring (see `Memory`): jit it with the
    memory donated (`jax.jit(core.apply, donate_argnums=3)`) and the write is in place, so
    its cost grows with M only through reading the memory. A multi-step call reads the
    memory oldest first (`Memory.in_order`, a copy) and returns it oldest first.
    """

    config: GTrXLConfig

    def setup(self):
        """Declares the L blocks."""
        self.blocks = [
            TransformerBlock(self.config, name=f"block_{l}") for l in range(self.config.num_layers)
        ]

    def _check(self, inputs: jax.Array, first: jax.Array, memory: Memory) -> None:
        cfg = self.config
        check_sequence(inputs, first, cfg.d_model, f"d_model={cfg.d_model}")
        check_state_type("memory", memory, Memory, "init_memory(config, B)")
        B, L, M = inputs.shape[1], cfg.num_layers, cfg.memory_len
        leaves = {
            "states": (memory.states, "[B, L, M, D]", (B, L, M, cfg.d_model)),
            "valid": (memory.valid, "[B, M]", (B, M)),
            "position": (memory.position, "[B]", (B,)),
        }
        if memory.cache is not None:
            if len(memory.cache.keys) != L:
                raise ValueError(f"memory.cache holds {len(memory.cache.keys)} layers; this "
                                 f"config has num_layers={L}. Make the memory with "
                                 "init_memory(config, B, cache=True).")
            H, Dh = cfg.num_heads, cfg.resolved_head_dim
            for field, (slots, size) in {"keys": ("M", M), "values": ("M", M),
                                         "pending_keys": ("1", 1),
                                         "pending_values": ("1", 1)}.items():
                for l, leaf in enumerate(getattr(memory.cache, field)):
                    leaves[f"cache.{field}[{l}]"] = (leaf, f"[B, H, {slots}, Dh]", (B, H, size, Dh))
        check_state_shapes("memory", "init_memory(config, B)", leaves)

    def refresh_cache(self, memory: Memory) -> Memory:
        """Recomputes the acting cache from memory.states under the current parameters.

        Args:
          memory: Memory with states [B, L, M, D] (in any ring order).

        Returns:
          The same memory with cache keys/values: per layer [B, H, M, Dh], slot for slot
          (and the newest slot's as the pending ones, [B, H, 1, Dh]).
        """
        states = jax.lax.stop_gradient(memory.states)
        kvs = [block.memory_keys_values(states[:, l]) for l, block in enumerate(self.blocks)]
        keys, values = zip(*kvs, strict=True)
        newest = functools.partial(
            ring_read, position=(memory.position - 1) % self.config.memory_len, axis=2
        )
        cache = KVCache(
            keys=keys,
            values=values,
            pending_keys=tuple(map(newest, keys)),
            pending_values=tuple(map(newest, values)),
        )
        return memory.replace(cache=cache)

    def __call__(
        self, inputs: jax.Array, first: jax.Array, memory: Memory
    ) -> tuple[jax.Array, Memory]:
        """Runs T steps, carrying the memory.

        Args:
          inputs: [T, B, D] float, the steps' embeddings (D = d_model).
          first: [T, B] bool, True on an episode's first step (no attention before it).
          memory: Memory from init_memory or a previous call; never differentiated.

        Returns:
          outputs [T, B, D] float32 and the memory after the T steps (with an updated
          cache if the input memory had one): in ring order after one step, oldest first
          after more.
        """
        self._check(inputs, first, memory)
        M, T = self.config.memory_len, inputs.shape[0]
        memory = jax.lax.stop_gradient(memory.flushed() if T == 1 else memory.in_order())
        x = jnp.swapaxes(inputs, 0, 1).astype(jnp.float32)  # [B, T, D]
        ids = episode_ids(memory.valid, jnp.swapaxes(first, 0, 1))
        mask = attention_mask(ids, M)
        distances = slot_distances(memory.position, M) if T == 1 else None

        block_inputs, segment_keys, segment_values = [], [], []
        for l, block in enumerate(self.blocks):
            block_inputs.append(x)
            if memory.cache is None:
                memory_kv = block.memory_keys_values(memory.states[:, l])
            else:
                memory_kv = (memory.cache.keys[l], memory.cache.values[l])
            x, (k, v) = block(x, memory_kv, mask, distances)
            segment_keys.append(k)
            segment_values.append(v)

        segment_kv = (segment_keys, segment_values) if memory.cache is not None else None
        new_memory = next_memory(memory, ids, jnp.stack(block_inputs, 1), segment_kv)
        return jnp.swapaxes(x, 0, 1), new_memory
