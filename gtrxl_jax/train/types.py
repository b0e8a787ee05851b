"""The Trajectory pytree that actors hand to the learner, and how batches of them are assembled.

A trajectory holds T+1 consecutive steps of B environments, time-major, exactly as the actor
fed them to the agent. Consecutive trajectories of one actor overlap by one step (step T of
one is step 0 of the next, as in Sebulba / cleanba): the learner needs step T only for its
observation (the V-trace bootstrap value) and for the reward and discount of the transition
that enters it.

Two kinds of leaves, with the batch on different axes:
- time-major [T+1, B, ...]: `inputs`, `actions`, `behaviour_logits`, `discount`;
- batch-major [B, ...]: `task_id`, `param_version` and every leaf of `core_state` (the core
  state is batch-major for every core in gtrxl_jax).

Every leaf is a host numpy array except `core_state`, which an actor thread leaves on the
device it acts on: the learner's placement moves it to the learner's devices device to device
(at the paper's scale it is ~200 MB per trajectory, which would otherwise cross the host
twice). An actor process sends it over a pipe, so there it arrives as host arrays.
"""

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gtrxl_jax.agent import AgentInput


@struct.dataclass
class Trajectory:
    """T+1 steps of B environments, as one actor acted them.

    Attributes:
      inputs: AgentInput [T+1, B] as the actor fed it (observation pytree, first,
        prev_action, prev_reward).
      actions: [T+1, B] int32, the action chosen at each step (the action of a `last` step is
        ignored by the environment).
      behaviour_logits: [T+1, B, A] float32, the acting policy's logits at each step.
      discount: [T+1, B] float32, the environment's discount of each step (0 on termination).
      task_id: [B] int32, the task of each environment row (0 for single-task runs).
      core_state: the core state before step 0, batch-major, without GTrXL's acting cache
        (host arrays, or jax Arrays on the acting device).
      param_version: [B] int32, the parameter version (learner update count) that chose the
        actions of steps 0..T-1. Step T is acted by the next trajectory's parameters: the
        learner reads only its observation, reward and discount.
    """

    inputs: AgentInput
    actions: Any
    behaviour_logits: Any
    discount: Any
    task_id: Any
    core_state: Any
    param_version: Any

    @property
    def length(self) -> int:
        """T, the number of transitions (the trajectory holds T+1 steps)."""
        return int(self.actions.shape[0]) - 1

    @property
    def batch_size(self) -> int:
        """B, the number of environment rows."""
        return int(self.actions.shape[1])


def time_major(trajectory: Trajectory) -> tuple:
    """The trajectory's time-major leaves [T+1, B, ...]: inputs, actions, logits, discount."""
    return (trajectory.inputs, trajectory.actions, trajectory.behaviour_logits,
            trajectory.discount)


def batch_major(trajectory: Trajectory) -> tuple:
    """The trajectory's batch-major leaves [B, ...]: task_id, core_state, param_version."""
    return trajectory.task_id, trajectory.core_state, trajectory.param_version


def rebuild(time_major_leaves: tuple, batch_major_leaves: tuple) -> Trajectory:
    """A Trajectory from the two groups of `time_major` and `batch_major`."""
    inputs, actions, behaviour_logits, discount = time_major_leaves
    task_id, core_state, param_version = batch_major_leaves
    return Trajectory(inputs=inputs, actions=actions, behaviour_logits=behaviour_logits,
                      discount=discount, task_id=task_id, core_state=core_state,
                      param_version=param_version)


def concatenate(trajectories: list[Trajectory]) -> Trajectory:
    """Joins trajectories of equal length along the batch: [T+1, B1], [T+1, B2] -> [T+1, B1+B2]."""
    if len(trajectories) == 1:
        return trajectories[0]
    time_major_leaves = jax.tree.map(lambda *xs: np.concatenate(xs, axis=1),
                                     *[time_major(t) for t in trajectories])
    batch_major_leaves = jax.tree.map(_join_rows, *[batch_major(t) for t in trajectories])
    return rebuild(time_major_leaves, batch_major_leaves)


def _join_rows(*parts) -> Any:
    """Join [B_i, ...] arrays along the batch, where they are.

    Host arrays join on the host; jax Arrays on the first part's device (the others move
    there device to device).
    """
    if not isinstance(parts[0], jax.Array):
        return np.concatenate(parts, axis=0)
    device = next(iter(parts[0].devices()))
    return jnp.concatenate([jax.device_put(part, device) for part in parts], axis=0)
