"""JAX-native environments: one environment as pure functions, batched with `jax.vmap`.

For an on-device (Anakin) loop that steps N environments and the agent inside one jitted
`lax.scan`:

    env = make_jax_env("TMaze-L10")
    states, timestep = batch_reset(env, reset_keys(seed, num_envs))   # JaxTimeStep [N]
    states, timestep = batch_step(env, states, actions)               # actions int32 [N]

Conventions, the same as the host `VectorEnv`s (`gtrxl_jax.envs.base`):

- An environment resets itself on the step after its last step: that step's action is
  ignored and it returns the first observation of a new episode with reward 0 and
  first=True.
- A last step has discount 0 if the episode terminated, 1 if a time limit truncated it.
- All state is a pytree (checkpointable); `step` takes no key. Each environment carries
  its stream key, and episode e draws from `derive_key(stream, e)`
  (`gtrxl_jax.envs.counter_keys`), so the host T-maze plays the same episodes.

Under `vmap` both the reset and the step of every environment are computed on every
step (a select picks one), so the tasks keep their resets cheap: O(observation size),
never a shuffle of a whole deck.

`JaxEnv` does the shared part (auto-reset, first/last/discount/success); a task
implements `_reset` and `_step`.
"""

import abc
from typing import Any

import chex
import jax
import jax.numpy as jnp
from flax import struct

from gtrxl_jax.envs.counter_keys import derive_key, stream_keys
from gtrxl_jax.envs.spec import OBSERVATION_KINDS, EnvSpec


@struct.dataclass
class JaxTimeStep:
    """One environment's step (scalars; [N] under vmap). Same semantics as `TimeStep`.

    Attributes:
      observation: pytree of arrays, one environment's observation (no batch axis).
      reward: float32 [], the reward received on entering this step (0 on a first step).
      discount: float32 [], 0 where this step ends the episode by termination, else 1.
      first: bool [], first step of an episode.
      last: bool [], final step of an episode (terminated or truncated).
      success: bool [], on a last step: whether the episode solved the task (False
        elsewhere and for tasks without success).
    """

    observation: Any
    reward: jax.Array
    discount: jax.Array
    first: jax.Array
    last: jax.Array
    success: jax.Array


@struct.dataclass
class Outcome:
    """What a task reports for one step, before the shared conventions.

    Attributes:
      observation: pytree of arrays matching the env's `observation`.
      reward: float [], the reward of the step.
      terminated: bool [], the episode ended in a terminal state.
      truncated: bool [], a time limit cut the episode.
      success: bool [], whether the task was solved (read on a last step only).
    """

    observation: Any
    reward: jax.Array
    terminated: jax.Array
    truncated: jax.Array
    success: jax.Array


@struct.dataclass
class EnvState:
    """One environment's state (fields [N, ...] under vmap).

    Attributes:
      task: the task's own state (a pytree).
      stream: uint32 [2], this environment's key, fixed for the run.
      episode: uint32 [], index of the current episode in the stream.
      ended: bool [], the latest step was a last step: the next step starts episode + 1.
    """

    task: Any
    stream: jax.Array
    episode: jax.Array
    ended: jax.Array


class JaxEnv(abc.ABC):
    """One environment of a task as pure JAX functions; batch with `jax.vmap`.

    Attributes:
      task: the task name (e.g. "TMaze-L10").
      family: where it comes from ("tmaze", "xminigrid", "bsuite", "popgym").
      observation: pytree of `jax.ShapeDtypeStruct`, one environment's observation.
      observation_kind: one of `OBSERVATION_KINDS`; tells the agent which torso to build.
      num_actions: size of the Discrete action space; actions are int32 in [0, num_actions).
      has_success: whether last steps report success.
    """

    def __init__(
        self,
        task: str,
        family: str,
        observation: Any,
        observation_kind: str,
        num_actions: int,
        has_success: bool,
    ):
        if observation_kind not in OBSERVATION_KINDS:
            raise ValueError(
                f"observation_kind must be one of {OBSERVATION_KINDS}, got {observation_kind!r}"
            )
        self.task = task
        self.family = family
        self.observation = observation
        self.observation_kind = observation_kind
        self.num_actions = int(num_actions)
        self.has_success = has_success

    def spec(self, num_envs: int) -> EnvSpec:
        """The spec of N of these environments stepped together (an Agent is built from it)."""
        return EnvSpec(
            task=self.task,
            family=self.family,
            observation=self.observation,
            observation_kind=self.observation_kind,
            num_actions=self.num_actions,
            num_envs=num_envs,
            batch_size=num_envs,
            has_success=self.has_success,
        )

    def reset(self, key: jax.Array) -> tuple[EnvState, JaxTimeStep]:
        """Start this environment's first episode.

        Args:
          key: uint32 [2], the environment's stream key (a row of `reset_keys`; a typed
            `jax.random.key` is accepted too).

        Returns:
          (state, timestep) with first=True, reward 0.
        """
        if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
            key = jax.random.key_data(key)
        chex.assert_shape(key, (2,), custom_message=(
            "JaxEnv.reset takes one environment's key, uint32 [2] (a row of reset_keys); "
            "reset N environments with batch_reset"))
        return self._begin(key.astype(jnp.uint32), jnp.uint32(0))

    def step(self, state: EnvState, action: jax.Array) -> tuple[EnvState, JaxTimeStep]:
        """Take one action; after a last step, start the next episode instead (action ignored).

        Args:
          state: the state from the previous `reset`/`step`.
          action: int32 [] in [0, num_actions).

        Returns:
          (state, timestep).
        """
        chex.assert_rank(action, 0, custom_message=(
            "JaxEnv.step takes one environment's action, int32 []; step N environments "
            "with batch_step"))
        chex.assert_type(action, int)
        begun = self._begin(state.stream, state.episode + jnp.uint32(1))
        task_state, outcome = self._step(state.task, action)
        last = outcome.terminated | outcome.truncated
        stepped = (
            EnvState(task=task_state, stream=state.stream, episode=state.episode, ended=last),
            JaxTimeStep(
                observation=outcome.observation,
                reward=jnp.asarray(outcome.reward, jnp.float32),
                discount=jnp.where(outcome.terminated, 0.0, 1.0).astype(jnp.float32),
                first=jnp.asarray(False),
                last=last,
                success=last & outcome.success,
            ),
        )
        return jax.tree.map(lambda b, s: jnp.where(state.ended, b, s), begun, stepped)

    def _begin(self, stream: jax.Array, episode: jax.Array) -> tuple[EnvState, JaxTimeStep]:
        """Start episode `episode` of a stream: its first state and timestep."""
        task_state, observation = self._reset(derive_key(stream, episode))
        # Python scalars in a reset state would be weakly typed, and a scan's carry must keep
        # its types from the reset through the steps.
        task_state = jax.tree.map(lambda x: jnp.asarray(x).astype(jnp.asarray(x).dtype), task_state)
        state = EnvState(task=task_state, stream=stream, episode=episode, ended=jnp.asarray(False))
        timestep = JaxTimeStep(
            observation=observation,
            reward=jnp.float32(0.0),
            discount=jnp.float32(1.0),
            first=jnp.asarray(True),
            last=jnp.asarray(False),
            success=jnp.asarray(False),
        )
        return state, timestep

    @abc.abstractmethod
    def _reset(self, key: jax.Array) -> tuple[Any, Any]:
        """Start an episode.

        Args:
          key: uint32 [2], this episode's key (all of the episode's randomness comes from it).

        Returns:
          (task state, first observation).
        """

    @abc.abstractmethod
    def _step(self, task_state: Any, action: jax.Array) -> tuple[Any, Outcome]:
        """Take one action in a running episode.

        Also called (and its result discarded) on the step after a last step, so it must
        not fail there.

        Args:
          task_state: the task's state.
          action: int32 [].

        Returns:
          (task state, outcome).
        """


def reset_keys(seed: int, num_envs: int) -> jax.Array:
    """The per-environment reset keys of a run with this seed.

    Args:
      seed: 0 <= seed < 2**31.
      num_envs: N >= 1.

    Returns:
      uint32 [N, 2]; row i is environment i's stream (the host T-maze uses the same rows).
    """
    return jnp.asarray(stream_keys(seed, num_envs))


def batch_reset(env: JaxEnv, keys: jax.Array) -> tuple[EnvState, JaxTimeStep]:
    """Reset N environments: keys uint32 [N, 2] -> (states, timestep), leaves [N, ...]."""
    return jax.vmap(env.reset)(keys)


def batch_step(
    env: JaxEnv, states: EnvState, actions: jax.Array
) -> tuple[EnvState, JaxTimeStep]:
    """Step N environments: actions int32 [N] -> (states, timestep), leaves [N, ...]."""
    chex.assert_shape(actions, states.episode.shape, custom_message=(
        "batch_step takes one action per environment"))
    return jax.vmap(env.step)(states, actions)


@struct.dataclass
class FirstEpisodes:
    """Each environment's first episode, from `play_first_episodes`.

    Attributes:
      returns: [N] float32, the episode's return (so far, if it has not ended).
      lengths: [N] float32, its steps.
      done: [N] bool, whether it ended within the step limit.
      success: [N] float32, its success at its last step (0 until it ends).
      steps: [] int32, the batched steps taken.
    """

    returns: jax.Array
    lengths: jax.Array
    done: jax.Array
    success: jax.Array
    steps: jax.Array


Policy = Any  # (policy state, timestep [N]) -> (actions int32 [N], policy state)


def play_first_episodes(env: JaxEnv, keys: jax.Array, policy: Policy, policy_state: Any,
                        max_steps: int) -> FirstEpisodes:
    """Step N environments under a policy until each has ended its first episode.

    Traceable (a `lax.while_loop`); stops early after `max_steps` batched steps.

    Args:
      env: the environment.
      keys: uint32 [N, 2] reset keys (`reset_keys`).
      policy: `policy(policy_state, timestep) -> (actions, policy_state)`, e.g. an agent
        carrying its core state, or uniform random actions carrying a key.
      policy_state: the policy's initial state.
      max_steps: the most batched steps.
    """
    env_state, timestep = batch_reset(env, keys)
    zeros = jnp.zeros(keys.shape[0])
    tally = FirstEpisodes(returns=zeros, lengths=zeros, done=jnp.zeros(keys.shape[0], bool),
                          success=zeros, steps=jnp.zeros([], jnp.int32))

    def running(carry):
        tally = carry[-1]
        return ~jnp.all(tally.done) & (tally.steps < max_steps)

    def step(carry):
        env_state, timestep, policy_state, tally = carry
        actions, policy_state = policy(policy_state, timestep)
        env_state, timestep = batch_step(env, env_state, actions)
        playing = ~tally.done
        tally = FirstEpisodes(
            returns=tally.returns + jnp.where(playing, timestep.reward, 0.0),
            lengths=tally.lengths + playing,
            done=tally.done | timestep.last,
            success=jnp.where(playing & timestep.last, timestep.success, tally.success),
            steps=tally.steps + 1)
        return env_state, timestep, policy_state, tally

    return jax.lax.while_loop(running, step, (env_state, timestep, policy_state, tally))[-1]
