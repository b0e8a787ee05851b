"""Frozen, validated configurations of the memory cores (GTrXL, LSTM, feed-forward).

Validation style: these configs raise ValueError from `validate()` (the library has no
training dependency); the training config (`gtrxl_jax.config`) raises ConfigError, a
ValueError, and re-raises these as ConfigError naming the section.
"""

import dataclasses
import math
from typing import Any

import jax.numpy as jnp

from gtrxl_jax.nn.gates import GATES

VARIANTS = ("trxl", "trxl_i", "gtrxl")
_DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


def check_positive_int(name: str, value: Any) -> None:
    """Raise ValueError unless `value` is an int >= 1 (a bool is not an int here).

    Args:
      name: what the value is, for the message (e.g. "GTrXLConfig.d_model").
      value: the value to check.
    """
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}.")


def _check_choice(owner: str, name: str, value: Any, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ValueError(f"{owner}.{name}={value!r} is not one of {allowed}.")


def dtype_name(owner: str, name: str, value: Any) -> str:
    """The name ("float32", "bfloat16" or "float16") of a dtype given by name or as a dtype.

    Raises:
      ValueError: any other value, naming `owner.name`.
    """
    try:
        dtype_of = jnp.dtype(value).name if not isinstance(value, str) else value
    except TypeError:
        dtype_of = None
    if dtype_of not in _DTYPES:
        raise ValueError(f"{owner}.{name}={value!r} is not one of {tuple(_DTYPES)}.")
    return dtype_of


def resolve_dtype(owner: str, name: str, value: Any) -> Any:
    """Returns the jnp dtype named by `value` ("float32", "bfloat16", ... or a dtype)."""
    return _DTYPES[dtype_name(owner, name, value)]


class _Validated:
    """Validates a config dataclass as soon as it is built; keeps its dtypes as names."""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            if field.name in ("dtype", "param_dtype"):  # a name saves to JSON; a dtype not
                value = dtype_name(type(self).__name__, field.name, getattr(self, field.name))
                object.__setattr__(self, field.name, value)
        self.validate()

    def validate(self) -> None:
        """Raises ValueError naming the field and the allowed values."""
        raise NotImplementedError


@dataclasses.dataclass(frozen=True)
class GTrXLConfig(_Validated):
    """Configuration of a (Gated) Transformer-XL core.

    Attributes:
      num_layers: L, the number of transformer blocks.
      d_model: D, the width of the residual stream (the core's input and output width).
      num_heads: H, attention heads.
      memory_len: M, how many earlier steps each query may attend to (the sliding window).
      variant: "trxl" (canonical post-LN), "trxl_i" (identity map reordering) or
        "gtrxl" (identity map reordering with gating layers).
      gate: the gating layer of "gtrxl": "input", "output", "highway", "sigmoid_tanh" or "gru".
      head_dim: per-head width Dh; None means d_model // num_heads. H * Dh may differ
        from d_model (the paper's GTrXL uses a wider attention than its embedding).
      d_ff: hidden width of the position-wise MLP; None means 4 * d_model.
      gate_bias: b_g; None means the paper's value for the gate, `nn.gates.GATES[gate]`
        (2.0 for "gru"; the "input" gate has no bias).
      learn_gate_bias: learn b_g, a [D] vector per gate that starts at gate_bias; False
        keeps it a constant offset (section 3.2's equations as written, and every result
        committed before 2026-12-07 was trained so).
      dtype: compute dtype of matmuls ("float32", "bfloat16" or "float16"; a jnp dtype is
        kept as its name); the residual stream, layer norms, softmax and memory.states stay
        float32 (the acting cache's keys and values are in this dtype).
      param_dtype: dtype of the parameters (as dtype).
    """

    num_layers: int = 4
    d_model: int = 256
    num_heads: int = 8
    memory_len: int = 64
    variant: str = "gtrxl"
    gate: str = "gru"
    head_dim: int | None = None
    d_ff: int | None = None
    gate_bias: float | None = None
    learn_gate_bias: bool = False
    dtype: Any = "float32"
    param_dtype: Any = "float32"

    def validate(self) -> None:
        """Raises ValueError naming the field and the allowed values."""
        owner = type(self).__name__
        for name in ("num_layers", "d_model", "num_heads", "memory_len"):
            check_positive_int(f"{owner}.{name}", getattr(self, name))
        _check_choice(owner, "variant", self.variant, VARIANTS)
        _check_choice(owner, "gate", self.gate, tuple(GATES))
        if self.head_dim is None and self.d_model % self.num_heads:
            raise ValueError(
                f"{owner}.num_heads={self.num_heads} does not divide d_model={self.d_model}; "
                "choose a divisor or set head_dim explicitly."
            )
        if self.head_dim is not None:
            check_positive_int(f"{owner}.head_dim", self.head_dim)
        if self.d_ff is not None:
            check_positive_int(f"{owner}.d_ff", self.d_ff)
        if self.gate_bias is not None and (isinstance(self.gate_bias, bool)
                                           or not isinstance(self.gate_bias, int | float)
                                           or not math.isfinite(self.gate_bias)):
            raise ValueError(
                f"{owner}.gate_bias must be a finite number or None, got {self.gate_bias!r}.")
        if not isinstance(self.learn_gate_bias, bool):
            raise ValueError(
                f"{owner}.learn_gate_bias must be True or False, got {self.learn_gate_bias!r}.")

    @property
    def resolved_head_dim(self) -> int:
        """Dh: head_dim, or d_model // num_heads when unset."""
        return self.head_dim if self.head_dim is not None else self.d_model // self.num_heads

    @property
    def resolved_d_ff(self) -> int:
        """The MLP's hidden width: d_ff, or 4 * d_model when unset."""
        return self.d_ff if self.d_ff is not None else 4 * self.d_model

    @property
    def resolved_gate_bias(self) -> float:
        """b_g: gate_bias, or the paper's value for this gate when unset (0 for no bias)."""
        if self.gate_bias is not None:
            return float(self.gate_bias)
        return float(GATES[self.gate].paper_bias or 0.0)

    @property
    def output_dim(self) -> int:
        """Width of the core's outputs [T, B, D]."""
        return self.d_model


@dataclasses.dataclass(frozen=True)
class LSTMConfig(_Validated):
    """Configuration of the LSTM baseline core.

    Attributes:
      hidden_size: width of the LSTM state and of the core's outputs.
      num_layers: stacked LSTM layers.
      dtype: compute dtype of matmuls (a name, as GTrXLConfig.dtype).
      param_dtype: dtype of the parameters (as dtype).
    """

    hidden_size: int = 256
    num_layers: int = 1
    dtype: Any = "float32"
    param_dtype: Any = "float32"

    def validate(self) -> None:
        """Raises ValueError naming the field and the allowed values."""
        owner = type(self).__name__
        check_positive_int(f"{owner}.hidden_size", self.hidden_size)
        check_positive_int(f"{owner}.num_layers", self.num_layers)

    @property
    def output_dim(self) -> int:
        """Width of the core's outputs [T, B, hidden_size]."""
        return self.hidden_size


@dataclasses.dataclass(frozen=True)
class FeedForwardConfig(_Validated):
    """Configuration of the memoryless pass-through core (a reactive baseline).

    Attributes:
      d_model: width of the inputs, passed through unchanged.
    """

    d_model: int = 256

    def validate(self) -> None:
        """Raises ValueError naming the field and the allowed values."""
        check_positive_int(f"{type(self).__name__}.d_model", self.d_model)

    @property
    def output_dim(self) -> int:
        """Width of the core's outputs [T, B, d_model]."""
        return self.d_model


CoreConfig = GTrXLConfig | LSTMConfig | FeedForwardConfig
