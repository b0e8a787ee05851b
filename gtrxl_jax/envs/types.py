"""The one TimeStep pytree that every environment in gtrxl_jax returns."""

from typing import Any

import numpy as np
from flax import struct


@struct.dataclass
class TimeStep:
    """A batch of environment steps, one row per environment (dm_env-style semantics).

    Step t holds what the agent sees before choosing action a_t.

    Attributes:
      observation: pytree of arrays [B, ...]; pixels stay uint8 (scaled inside jit).
      reward: [B] float32, the reward received on entering this step (0 on a first step).
      discount: [B] float32, 0 where this step ends the episode by termination, else 1
        (a time-limit truncation keeps 1, so the learner bootstraps from it).
      first: [B] bool, True on an episode's first step (the step after a reset).
      last: [B] bool, True on an episode's final step (terminated or truncated). The action
        chosen on a last step is ignored by the environment: the next step is a first step.
    """

    observation: Any
    reward: np.ndarray
    discount: np.ndarray
    first: np.ndarray
    last: np.ndarray
