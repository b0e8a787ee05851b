"""gymnax environments behind `JaxEnv`: bsuite's MemoryChain ("MemoryChain-L<length>").

gymnax (pinned to 0.0.9: 1.0.1 changed `step` to return six values) resets inside its
own `step` on the same step as termination (gym style); this wrapper calls its
`reset_env`/`step_env` instead, so the episode ends on a last step and the next step
starts the next one, as every `JaxEnv` does.

MemoryChain (bsuite, Osband et al., 2020, https://arxiv.org/abs/1908.03568): a context bit
shown at the start, then memory_length steps later the agent must output it. An episode
is memory_length + 1 actions; only the last one counts, reward +1 if it equals the
context, else -1 (success: reward > 0). The observation is float32 [3]: time remaining
1 - t/memory_length, the query (always 0 with one bit) and the context (+-1) on the first
two observations, 0 after. As in bsuite, gymnax's `step_env` returns the observation of
the state before the step, so the context shows at t = 0 and t = 1 and the last
observation before the choice still reads 1/memory_length.

gymnax is imported here only, when a gymnax task is built (it takes seconds to import).
"""

from typing import Any

import gymnax
import jax
import jax.numpy as jnp
from flax import struct

from gtrxl_jax.envs.functional import JaxEnv, Outcome
from gtrxl_jax.envs.spec import VECTOR, array_spec


@struct.dataclass
class GymnaxState:
    """One gymnax environment's episode.

    Attributes:
      env: gymnax's own state.
      key: uint32 [2], the episode's key; step t's key is `fold_in(key, t)`.
      time: int32 [], steps taken in the episode.
    """

    env: Any
    key: jax.Array
    time: jax.Array


class GymnaxEnv(JaxEnv):
    """A gymnax environment with a Discrete action space and a flat float observation."""

    def __init__(self, env: Any, params: Any, task: str, family: str, has_success: bool):
        """Wrap a gymnax environment.

        Args:
          env: the gymnax environment.
          params: its parameters.
          task: the task name.
          family: the task's family (e.g. "bsuite").
          has_success: whether a positive final reward counts as success.
        """
        space = env.observation_space(params)
        super().__init__(
            task=task,
            family=family,
            observation=array_spec(space.shape, jnp.float32),
            observation_kind=VECTOR,
            num_actions=env.action_space(params).n,
            has_success=has_success,
        )
        self._env = env
        self._params = params

    def _reset(self, key: jax.Array) -> tuple[GymnaxState, jax.Array]:
        observation, env_state = self._env.reset_env(key, self._params)
        state = GymnaxState(env=env_state, key=key, time=jnp.int32(0))
        return state, observation.astype(jnp.float32)

    def _step(self, state: GymnaxState, action: jax.Array) -> tuple[GymnaxState, Outcome]:
        time = state.time + 1
        observation, env_state, reward, done, info = self._env.step_env(
            jax.random.fold_in(state.key, time), state.env, action, self._params
        )
        terminated = done & (info["discount"] == 0)
        outcome = Outcome(
            observation=observation.astype(jnp.float32),
            reward=jnp.asarray(reward, jnp.float32),
            terminated=terminated,
            truncated=done & ~terminated,
            success=reward > 0,
        )
        return GymnaxState(env=env_state, key=state.key, time=time), outcome


def make_memory_chain(memory_length: int, task: str | None = None) -> GymnaxEnv:
    """Make bsuite's MemoryChain with one context bit.

    Args:
      memory_length: N >= 1, the steps between the context and the query.
      task: the task name (default "MemoryChain-L{N}").

    Returns:
      The environment; its episodes end only by termination (after N + 1 actions).
    """
    if memory_length < 1:
        raise ValueError(f"MemoryChain-L<length> needs a length >= 1, got {memory_length}")
    env, params = gymnax.make("MemoryChain-bsuite")
    # bsuite ends the episode at the query; gymnax's default time limit (1000) must not
    # end it earlier.
    params = params.replace(memory_length=memory_length, max_steps_in_episode=memory_length + 1)
    return GymnaxEnv(env, params, task or f"MemoryChain-L{memory_length}", "bsuite", True)
