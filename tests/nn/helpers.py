"""Small builders shared by the core tests."""

import jax
import jax.numpy as jnp

import gtrxl_jax as gx
from gtrxl_jax.nn.torsos import ImpalaResNet


def random_sequence(T, B, D, seed=0, reset_prob=0.25):
    """Inputs [T, B, D] and first [T, B] with random episode starts."""
    k1, k2 = jax.random.split(jax.random.PRNGKey(seed))
    inputs = jax.random.normal(k1, (T, B, D))
    first = jax.random.bernoulli(k2, reset_prob, (T, B))
    return inputs, first


def init_core(config, T=6, B=3, seed=0):
    """The core, its params (initialised in one jitted call), a sequence and an empty
    memory."""
    core = gx.make_core(config)
    D = config.d_model if hasattr(config, "d_model") else 8
    inputs, first = random_sequence(T, B, D, seed)
    memory = gx.init_memory(config, B)
    params = jax.jit(core.init)(jax.random.PRNGKey(seed + 1), inputs, first, memory)
    return core, params, inputs, first, memory


def jitted_apply(core):
    """`core.apply` as one jitted call (`method` static): one compile per input shape, where
    running op by op compiles every operation of every shape (several times slower)."""
    return jax.jit(core.apply, static_argnames="method")


def run_chunks(core, params, inputs, first, memory, sizes):
    """Runs the core over consecutive chunks of the given sizes, carrying the memory.

    Each chunk is one jitted call, as acting and learning run.
    """
    apply = jitted_apply(core)
    outputs, start = [], 0
    for size in sizes:
        out, memory = apply(params, inputs[start : start + size], first[start : start + size],
                            memory)
        outputs.append(out)
        start += size
    return jnp.concatenate(outputs), memory


def impala_gradients(pixels, **options):
    """Gradients of a fixed loss of a small ImpalaResNet (channels 4, 8; features 16)."""
    torso = ImpalaResNet(channels=(4, 8), output_size=16, **options)
    params = torso.init(jax.random.key(0), pixels)
    return jax.jit(jax.grad(lambda p: jnp.sum(jnp.sin(torso.apply(p, pixels)))))(params)
