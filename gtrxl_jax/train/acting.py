"""The acting step, shared by actors, evaluation, the on-device loop and the benchmarks.

One jitted call acts for B environments, carrying the core state:

    policy_step = jax.jit(make_policy_step(agent), donate_argnums=2)
    actions, logits, state, key = policy_step(params, inputs, state, key)   # inputs [B]
"""

import dataclasses
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.agent import Agent, AgentInput


def make_policy_step(agent: Agent, greedy: bool = False):
    """The acting step (to be jitted): sample actions from the policy, carrying the core state.

    Args:
      agent: the agent.
      greedy: take the most probable action instead of sampling.

    Returns:
      A function of params, AgentInput [B, ...], the core state and a PRNG key, returning
      actions [B] int32, logits [B, A] float32, the new state and the next key.
    """

    def policy_step(params, inputs: AgentInput, state, key):
        outputs, state = agent.step(params, inputs, state)
        key, sample_key = jax.random.split(key)
        if greedy:
            actions = outputs.logits.argmax(axis=-1)
        else:
            actions = jax.random.categorical(sample_key, outputs.logits)
        return actions.astype(np.int32), outputs.logits, state, key

    return policy_step


def sample_actions(logits: jax.Array, keys: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Sample each row's action from a key stream of its own.

    With one stream per environment, the actions do not depend on how the environments are
    batched or split over devices (the on-device loop's rollouts).

    Args:
      logits: [B, A] policy logits.
      keys: uint32 [B, 2], each row's key.

    Returns:
      actions [B] int32 and the rows' next keys [B, 2].
    """
    def sample(row_logits, key):
        key, sample_key = jax.random.split(key)
        return jax.random.categorical(sample_key, row_logits).astype(np.int32), key

    return jax.vmap(sample)(logits, keys)


def act_on_timestep(agent: Agent, params, timestep, prev_action: jax.Array, state,
                    keys: jax.Array, greedy: bool) -> tuple[jax.Array, object, jax.Array]:
    """One acting step on the timestep of N JAX environments (`envs.functional.JaxTimeStep`).

    Args:
      agent: the agent.
      params: its parameters.
      timestep: the environments' latest timestep, leaves [N, ...].
      prev_action: [N] int32, the actions that led to it.
      state: the core state.
      keys: uint32 [N, 2], each environment's sampling key stream (`sample_actions`).
      greedy: take the most probable action (the keys are then returned as they are).

    Returns:
      actions [N] int32, the new core state and the next keys.
    """
    inputs = AgentInput.at(timestep, prev_action)
    outputs, state = agent.step(params, inputs, state)
    if greedy:
        return outputs.logits.argmax(-1).astype(jnp.int32), state, keys
    actions, keys = sample_actions(outputs.logits, keys)
    return actions, state, keys


@dataclasses.dataclass(frozen=True)
class ActingSteps:
    """The jitted acting functions of one agent, shared by its actors (compiled once).

    Attributes:
      policy_step: jitted `make_policy_step(agent)`; it donates the core state it takes.
      refresh: jitted `agent.refresh_state` (params, state) -> state.
      start_state: jitted `agent.snapshot_state` (state) -> a trajectory's start state.
    """

    policy_step: Callable
    refresh: Callable
    start_state: Callable

    @classmethod
    def of(cls, agent: Agent) -> "ActingSteps":
        """Jit the acting functions of an agent."""
        return cls(
            jax.jit(make_policy_step(agent), donate_argnums=2),
            jax.jit(agent.refresh_state),
            jax.jit(agent.snapshot_state),
        )
