"""gtrxl_jax: the Gated Transformer-XL for reinforcement learning in JAX/Flax."""

from gtrxl_jax.nn import *  # noqa: F403  (the public core API lives at the package root)
from gtrxl_jax.nn import __all__ as _nn_all

__all__ = list(_nn_all)
__version__ = "0.1.0"
