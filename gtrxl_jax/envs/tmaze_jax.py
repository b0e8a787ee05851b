"""The passive T-maze as a JAX environment, equal step for step to the numpy `TMaze`.

The task, its observations, rewards and timing are those of `gtrxl_jax.envs.tmaze` (read
its module doc). Both draw episode e's cue of environment i from
`derive_key(reset_keys(seed, N)[i], e)`, so

    env = TMazeJax(corridor_length=10)
    states, timestep = batch_reset(env, reset_keys(seed, num_envs))

plays the same episodes as `TMaze(10, num_envs, seed)` given the same actions.
"""

import jax
import jax.numpy as jnp
from flax import struct

from gtrxl_jax.envs.functional import JaxEnv, Outcome
from gtrxl_jax.envs.tmaze import OBSERVATIONS, cue_of, describe, view_of


@struct.dataclass
class TMazeState:
    """One T-maze's episode.

    Attributes:
      time: int32 [], t within the episode (0 .. L+2, see `gtrxl_jax.envs.tmaze`).
      cue: int32 [], 0 = left, 1 = right.
    """

    time: jax.Array
    cue: jax.Array


class TMazeJax(JaxEnv):
    """One passive T-maze with corridor length L, as pure JAX functions."""

    def __init__(self, corridor_length: int, task: str | None = None):
        """Build the T-maze.

        Args:
          corridor_length: L >= 0, the number of corridor steps between cue and junction.
          task: the task name (default "TMaze-L{L}").
        """
        super().__init__(**describe(corridor_length, task))
        self.corridor_length = corridor_length

    def _reset(self, key: jax.Array) -> tuple[TMazeState, jax.Array]:
        state = TMazeState(time=jnp.int32(0), cue=cue_of(key))
        return state, self._observe(state)

    def _step(self, state: TMazeState, action: jax.Array) -> tuple[TMazeState, Outcome]:
        end = self.corridor_length + 2
        chose = state.time == end - 1  # only the choice at the junction counts
        reward = chose & (action == state.cue)
        state = state.replace(time=state.time + 1)
        terminated = state.time == end
        outcome = Outcome(
            observation=self._observe(state),
            reward=reward.astype(jnp.float32),
            terminated=terminated,
            truncated=jnp.asarray(False),
            success=reward,
        )
        return state, outcome

    def _observe(self, state: TMazeState) -> jax.Array:
        """The observation [4] float32 at the state's time."""
        view = view_of(state.time, state.cue, self.corridor_length, where=jnp.where)
        return jnp.asarray(OBSERVATIONS)[view]
