"""MiniGrid Memory from xminigrid behind `JaxEnv` ("MiniGrid-MemoryS<size>").

xminigrid (Nikulin et al., 2023, https://arxiv.org/abs/2312.12044) reimplements MiniGrid
in JAX. Its Memory task: a start room holds an object to remember (a green ball or key);
a corridor of length size - 6 leads to a junction with one of each object above and
below; walking up to the matching one is success (reward 1 - 0.9 * steps / max_steps),
to the other ends the episode with reward 0. The grid is 7 high and `size` wide, with
max_steps 5 * size**2 (a time limit: truncation, discount 1). Actions: xminigrid's 6
(forward, turn right, turn left, pick up (disabled here), put down, toggle).

Not the host task of the same size: envpool's "MiniGrid-MemoryS9-v0" (note "-v0") is
MiniGrid's own, with a 7x7 view and a dict observation read by `MiniGridEncoder`;
xminigrid's agent sees a 3x3 egocentric view, (3, 3, 2) uint8 of (tile, colour) codes,
through walls (MiniGrid's Memory does not: see_through_walls=False) and without
MiniGrid's third, state channel.

Observation encoding: the 3x3 view is too small for `MiniGridEncoder` (its two VALID 3x3
convolutions need at least 5x5, and it reads three codes a cell, not two), so each cell's
tile (13 values) and colour (12 values) are one-hot encoded and the 9 cells flattened, row
by row, into a float32 [225] vector (VECTOR: `MLPTorso`). One-hot rather than scaled
codes: the codes are categories, not magnitudes.

xminigrid is imported here only, when the task is built (it makes JAX arrays on import).
Its XLand benchmarks are not used (they download rulesets at run time).
"""

import jax
import jax.numpy as jnp
import numpy as np
import xminigrid
from xminigrid.core.constants import NUM_COLORS, NUM_TILES
from xminigrid.types import TimeStep

from gtrxl_jax.envs.functional import JaxEnv, Outcome
from gtrxl_jax.envs.spec import VECTOR, array_spec

MIN_SIZE = 7  # a corridor of one cell


def encode_view(view: jax.Array) -> jax.Array:
    """One-hot encode an egocentric view: uint8 [H, W, 2] -> float32 [H * W * 25]."""
    tiles = jax.nn.one_hot(view[..., 0], NUM_TILES, dtype=jnp.float32)
    colours = jax.nn.one_hot(view[..., 1], NUM_COLORS, dtype=jnp.float32)
    return jnp.concatenate([tiles, colours], axis=-1).reshape(-1)


class XMiniGridMemory(JaxEnv):
    """xminigrid's MiniGrid Memory of one size, as pure JAX functions."""

    def __init__(self, size: int, task: str | None = None):
        """Build the task.

        Args:
          size: the grid's width, >= 7 (corridor length size - 6).
          task: the task name (default "MiniGrid-MemoryS{size}").
        """
        if size < MIN_SIZE:
            raise ValueError(f"MiniGrid-MemoryS<size> needs size >= {MIN_SIZE}, got {size}")
        env, params = xminigrid.make("MiniGrid-MemoryS8")
        # max_steps is derived from the width when the params are made, so set it again.
        self._params = params.replace(width=size, max_steps=5 * size**2)
        self._env = env
        view = self._params.view_size
        super().__init__(
            task=task or f"MiniGrid-MemoryS{size}",
            family="xminigrid",
            observation=array_spec((view * view * (NUM_TILES + NUM_COLORS),), np.float32),
            observation_kind=VECTOR,
            num_actions=env.num_actions(self._params),
            has_success=True,
        )
        self.max_steps = self._params.max_steps

    def _reset(self, key: jax.Array) -> tuple[TimeStep, jax.Array]:
        timestep = self._env.reset(self._params, key)
        return timestep, encode_view(timestep.observation)

    def _step(self, timestep: TimeStep, action: jax.Array) -> tuple[TimeStep, Outcome]:
        timestep = self._env.step(self._params, timestep, action)
        terminated = timestep.discount == 0
        outcome = Outcome(
            observation=encode_view(timestep.observation),
            reward=timestep.reward,
            terminated=terminated,
            truncated=timestep.last() & ~terminated,
            success=terminated & (timestep.reward > 0),
        )
        return timestep, outcome
