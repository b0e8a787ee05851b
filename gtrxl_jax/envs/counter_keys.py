"""Counter-based keys: the same per-environment and per-episode randomness in numpy and JAX.

numpy's Generator stream cannot be reproduced inside a jitted JAX program, and a JAX
PRNG call on the host costs a device dispatch. So the project's environments derive their
randomness from small integer hashes that run alike on numpy and jax.numpy arrays (uint32
arithmetic wraps the same way in both):

    streams = stream_keys(seed, num_envs)          # uint32 [N, 2], one per environment
    key = derive_key(streams[i], episode)          # uint32 [2], that episode's key

A derived key is a raw uint32 [2] key, so JAX tasks draw from it with `jax.random` (it is
a valid threefry key), while numpy code reads its bits directly (the T-maze's cue is the
low bit of the first word). For a fixed key, distinct counters give distinct keys.
"""

from typing import Any

import jax.numpy as jnp
import numpy as np

_MAX_SEED = 2**31
# The key that the per-environment streams of every seed are derived from: (seed, this).
_ROOT_WORD = np.uint32(0x2545F491)
# Decorrelates the second word's counter from the first's (the golden-ratio constant).
_GOLDEN = np.uint32(0x9E3779B9)


def mix32(x: Any) -> Any:
    """Hash uint32 values with lowbias32 (a bijection of uint32; numpy or jax arrays).

    lowbias32 is from Chris Wellons' hash prospector
    (https://nullprogram.com/blog/2018/07/31/).

    Args:
      x: uint32 array of any shape, numpy or JAX (numpy: not a 0-d scalar, whose
        overflow would warn).

    Returns:
      uint32 array of the same shape and kind.
    """
    x = x ^ (x >> 16)
    x = x * np.uint32(0x7FEB352D)
    x = x ^ (x >> 15)
    x = x * np.uint32(0x846CA68B)
    return x ^ (x >> 16)


def derive_key(key: Any, counter: Any) -> Any:
    """Derive the key of a counter's draw from a key (numpy or JAX, same values).

    Args:
      key: uint32 [..., 2], the parent key(s).
      counter: uint32 [...] (or anything that casts to it), e.g. an env id or an episode
        index, broadcastable against key[..., 0].

    Returns:
      uint32 [..., 2]; distinct counters give distinct keys for the same parent key.
    """
    xp = np if isinstance(key, np.ndarray) else jnp
    counter = xp.asarray(counter).astype(xp.uint32)
    first = mix32(key[..., 0] ^ mix32(counter))
    second = mix32(key[..., 1] ^ mix32(counter ^ _GOLDEN))
    return xp.stack([first, second], axis=-1)


def stream_keys(seed: int, num_envs: int) -> np.ndarray:
    """The per-environment keys of a run with this seed.

    Args:
      seed: 0 <= seed < 2**31.
      num_envs: N >= 1.

    Returns:
      uint32 [N, 2] numpy array; row i is environment i's stream.
    """
    if not 0 <= int(seed) < _MAX_SEED:
        raise ValueError(f"seed must be an int in [0, 2**31), got {seed!r}")
    if int(num_envs) < 1:
        raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
    root = np.array([[seed, _ROOT_WORD]], np.uint32)
    return derive_key(root, np.arange(num_envs, dtype=np.uint32))
