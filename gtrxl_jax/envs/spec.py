"""EnvSpec: the static description of a batched environment that the agent is built from.

The spec says what one environment's observation looks like (a pytree of
`jax.ShapeDtypeStruct`, without the batch axis), which torso can read it
(`observation_kind`), how many discrete actions there are, and how the batch is
laid out (`num_envs` environments, `batch_size` rows per `recv`).

The observation kinds are the torsos' (`gtrxl_jax.nn.torsos`, re-exported here): each
environment names its kind once, and the agent builds its torso from that name. An
environment that classifies a spec by its shape uses `infer_observation_kind`, the one rule.
"""

import dataclasses
from typing import Any

import jax
import numpy as np

from gtrxl_jax.nn.config import check_positive_int
from gtrxl_jax.nn.torsos import (
    MINIGRID,
    OBSERVATION_KINDS,
    PIXELS_CHW,
    PIXELS_HWC,
    SUPPORTED_OBSERVATIONS,
    VECTOR,
    infer_observation_kind,
)

__all__ = [
    "MINIGRID",
    "OBSERVATION_KINDS",
    "PIXELS_CHW",
    "PIXELS_HWC",
    "SUPPORTED_OBSERVATIONS",
    "VECTOR",
    "EnvSpec",
    "array_spec",
    "check_batch_layout",
    "infer_observation_kind",
]


@dataclasses.dataclass(frozen=True)
class EnvSpec:
    """What an agent needs to know about a batched environment.

    Attributes:
      task: the task name given to `make_env` (e.g. "Pong-v5", "TMaze-L10").
      family: where the task comes from: an envpool family ("atari", "vizdoom",
        "minigrid", "procgen", "classic_control", ...), "gymnasium", "memory_maze", or the
        JAX tasks' "tmaze" (the project's own), "xminigrid", "bsuite" and "popgym".
      observation: pytree of `jax.ShapeDtypeStruct`, one environment's observation (no batch
        axis); a `TimeStep.observation` has the same structure with a leading [B] axis.
      observation_kind: one of OBSERVATION_KINDS; tells the agent which torso to build.
      num_actions: size of the Discrete action space; actions are int32 in [0, num_actions).
      num_envs: number of environments N; env ids are 0 .. N-1.
      batch_size: rows per `recv` (B). Equal to num_envs in synchronous use; smaller when
        the actor overlaps stepping with inference.
      has_success: whether completed episodes report a success flag.
    """

    task: str
    family: str
    observation: Any
    observation_kind: str
    num_actions: int
    num_envs: int
    batch_size: int
    has_success: bool

    def __post_init__(self):
        if self.observation_kind not in OBSERVATION_KINDS:
            raise ValueError(
                f"observation_kind must be one of {OBSERVATION_KINDS}, "
                f"got {self.observation_kind!r}"
            )
        check_positive_int("EnvSpec.num_actions", self.num_actions)
        check_batch_layout(self.num_envs, self.batch_size)

    @property
    def is_async(self) -> bool:
        """True when `recv` returns only part of the environments (batch_size < num_envs)."""
        return self.batch_size < self.num_envs


def check_batch_layout(num_envs: int, batch_size: int) -> None:
    """Raise ValueError unless num_envs >= 1 and 1 <= batch_size <= num_envs."""
    if num_envs < 1:
        raise ValueError(f"num_envs must be >= 1, got {num_envs}")
    if not 1 <= batch_size <= num_envs:
        raise ValueError(f"batch_size must be between 1 and num_envs={num_envs}, got {batch_size}")


def array_spec(shape: tuple[int, ...], dtype: Any) -> jax.ShapeDtypeStruct:
    """Make one observation leaf's spec: its per-environment shape and dtype."""
    return jax.ShapeDtypeStruct(tuple(int(d) for d in shape), np.dtype(dtype))
