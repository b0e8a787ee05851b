"""Pure-functional Flax memory cores: GTrXL / TrXL / TrXL-I, the LSTM baseline, gates, attention."""

from gtrxl_jax.nn.attention import RelativeMultiHeadAttention, relative_shift, sinusoid_embedding
from gtrxl_jax.nn.config import (
    VARIANTS,
    CoreConfig,
    FeedForwardConfig,
    GTrXLConfig,
    LSTMConfig,
)
from gtrxl_jax.nn.cores import init_memory, make_core
from gtrxl_jax.nn.gates import GATES, Gate, GateSpec
from gtrxl_jax.nn.gtrxl import GTrXL, TransformerBlock
from gtrxl_jax.nn.memory import KVCache, Memory
from gtrxl_jax.nn.recurrent import FeedForwardCore, LSTMCore, LSTMState, NoState

__all__ = [
    "GATES",
    "VARIANTS",
    "CoreConfig",
    "FeedForwardConfig",
    "FeedForwardCore",
    "GTrXL",
    "GTrXLConfig",
    "Gate",
    "GateSpec",
    "KVCache",
    "LSTMConfig",
    "LSTMCore",
    "LSTMState",
    "Memory",
    "NoState",
    "RelativeMultiHeadAttention",
    "TransformerBlock",
    "init_memory",
    "make_core",
    "relative_shift",
    "sinusoid_embedding",
]
