"""MiniGrid Memory made easier one step at a time, to find what stops an agent learning it.

JAX factories for `env.factory` (see docs/stability.md, "MiniGrid Memory"):

- `memory`: the task itself (xminigrid's, as "MiniGrid-MemoryS<size>"), with the options;
- `start_at_cue`: the agent always starts in the start room's first column, where the cue
  is in its 3x3 view on the first step: no exploration is needed to see it, but the choice
  still matches the remembered cue against the object seen at the junction;
- `fixed_sides`: as `start_at_cue`, and the ball is always the upper object: the choice
  depends on the cue alone, as in the T-maze.

All three take the options `size` (default 9), `actions` (6, xminigrid's; 3 keeps forward and
the two turns) and `max_steps` (0: the task's 5 size^2).

    gtrxl-train learner.loop=on_device \
        env.factory=experiments.diagnostics.minigrid_variants:start_at_cue ...
"""

import jax
import jax.numpy as jnp
from xminigrid.core.constants import Colors, Tiles
from xminigrid.core.observation import transparent_field_of_view

from gtrxl_jax.envs.xminigrid_env import XMiniGridMemory, encode_view

ROW = 3  # the corridor's row
CUE = (2, 1)  # the cue's cell (row, column) in the start room
BALL, KEY = (jnp.array((tile, Colors.GREEN), jnp.uint8) for tile in (Tiles.BALL, Tiles.KEY))


class MemoryVariant(XMiniGridMemory):
    """MiniGrid Memory with fewer actions, another time limit, or an easier start."""

    def __init__(self, size: int, actions: int, max_steps: int, start_at_cue: bool,
                 fixed_sides: bool):
        super().__init__(size, task=f"MiniGrid-MemoryS{size}-variant")
        if actions not in (3, 6):
            raise ValueError(f"actions must be 3 or 6, got {actions}")
        if max_steps:
            self._params = self._params.replace(max_steps=max_steps)
            self.max_steps = max_steps
        self.num_actions = actions  # 3: forward, turn right, turn left (xminigrid's 0, 1, 2)
        self.start_at_cue = start_at_cue
        self.fixed_sides = fixed_sides

    def _reset(self, key: jax.Array):
        timestep, observation = super()._reset(key)
        if not self.start_at_cue:
            return timestep, observation
        state = timestep.state
        state = state.replace(agent=state.agent.replace(position=jnp.array((ROW, CUE[1]))))
        if self.fixed_sides:
            end = self._params.width - 2
            grid = state.grid.at[1, end].set(BALL).at[5, end].set(KEY)
            cue_is_ball = (grid[CUE] == BALL).all()
            up, down = jnp.array((2, end)), jnp.array((4, end))
            carry = state.carry.replace(success_pos=jnp.where(cue_is_ball, up, down),
                                        failure_pos=jnp.where(cue_is_ball, down, up))
            state = state.replace(grid=grid, carry=carry)
        view = transparent_field_of_view(state.grid, state.agent, self._params.view_size,
                                         self._params.view_size)
        return timestep.replace(state=state, observation=view), encode_view(view)


def memory(size: int = 9, actions: int = 6, max_steps: int = 0) -> MemoryVariant:
    """The task itself, with the options above."""
    return MemoryVariant(int(size), int(actions), int(max_steps), False, False)


def start_at_cue(size: int = 9, actions: int = 6, max_steps: int = 0) -> MemoryVariant:
    """The cue in view at the start; the choice matches it against the junction's object."""
    return MemoryVariant(int(size), int(actions), int(max_steps), True, False)


def fixed_sides(size: int = 9, actions: int = 6, max_steps: int = 0) -> MemoryVariant:
    """The cue in view at the start, the ball always up: the choice depends on the cue alone."""
    return MemoryVariant(int(size), int(actions), int(max_steps), True, True)
