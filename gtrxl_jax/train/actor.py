"""The actor: a thread that steps environments with the current policy and cuts trajectories.

One actor owns a few groups of environments (`EnvGroup`), each a `VectorEnv` of one task,
and visits them in a fixed order. A group's step is: `recv` its timestep, run the jitted
policy step on it, `send` the sampled actions. While one group's environments step (envpool
runs them on its own threads), the actor runs inference for the next group, so stepping
overlaps inference. Every group returns all of its environments on each `recv`, so the data
do not depend on thread timing (what reproducible mode needs).

The actor carries each group's core state, GTrXL's acting cache included, and recomputes
the cache with `agent.refresh_state` whenever it switches parameters, so acting stays
equal to the learner's unroll. Parameters switch only between trajectories: all actions of
steps 0..T-1 of a trajectory come from one parameter version. The jitted policy step donates
the state it carries, so GTrXL's memory is updated in place (one slot per step, not a copy
of the memory); a trajectory keeps its start state in buffers of its own, oldest first.

Trajectories of T steps overlap by one step; the first holds steps 0..T, the next T..2T, ...
"""

import dataclasses
import logging
import threading
from typing import Any

import jax
import numpy as np

from gtrxl_jax.agent import Agent, AgentInput
from gtrxl_jax.envs import VectorEnv
from gtrxl_jax.train import types
from gtrxl_jax.train.acting import ActingSteps
from gtrxl_jax.train.handoff import ParamsStore, Stopped, TrajectoryQueue

logger = logging.getLogger(__name__)


def required_version(trajectory_index: int, start_update: int, trajectories_per_update: int) -> int:
    """The parameter version that acts a trajectory in reproducible mode.

    The trajectory feeds learner update u = start_update + index // per_update + 1 and is
    acted with the parameters of update u - 2, one update behind the parameters that the
    learner holds when it uses the data (a fixed policy lag of 1, as cleanba). The first
    two updates after a (re)start use the parameters at the start.
    """
    update = start_update + trajectory_index // trajectories_per_update + 1
    return max(update - 2, start_update)


class StepBuffer:
    """The steps of one group's trajectory in progress (host arrays, one entry per step)."""

    def __init__(self):
        """Start empty."""
        self.inputs: list[AgentInput] = []
        self.actions: list[np.ndarray] = []
        self.logits: list[np.ndarray] = []
        self.discount: list[np.ndarray] = []

    def __len__(self) -> int:
        return len(self.actions)

    def append(self, inputs: AgentInput, actions, logits, discount) -> None:
        """Add one step: inputs [B], actions [B], logits [B, A], discount [B]."""
        self.inputs.append(inputs)
        self.actions.append(actions)
        self.logits.append(logits)
        self.discount.append(discount)

    def stacked(self) -> tuple[AgentInput, np.ndarray, np.ndarray, np.ndarray]:
        """The steps stacked time-major: inputs [N, B], actions [N, B], logits [N, B, A], ..."""
        inputs = jax.tree.map(lambda *xs: np.stack(xs), *self.inputs)
        return inputs, np.stack(self.actions), np.stack(self.logits), np.stack(self.discount)

    def keep_last(self) -> None:
        """Drop all steps but the last (the first step of the next trajectory)."""
        for steps in (self.inputs, self.actions, self.logits, self.discount):
            del steps[:-1]


@dataclasses.dataclass
class EnvGroup:
    """Environments of one task that the actor steps together, with their acting state.

    Attributes:
      env: the environments (synchronous layout: every `recv` returns all of them).
      task_id: the task's index in the run's task list.
      state: the core state on the actor's device, with the acting cache.
      start_state: the core state before step 0 of the trajectory in progress (no cache).
      prev_action: [B] int32, each environment's previous action.
      buffer: the trajectory in progress.
    """

    env: VectorEnv
    task_id: int
    state: Any = None
    start_state: Any = None
    prev_action: np.ndarray | None = None
    buffer: StepBuffer = dataclasses.field(default_factory=StepBuffer)

    @property
    def num_envs(self) -> int:
        """How many environments the group steps."""
        return self.env.spec.num_envs


@dataclasses.dataclass
class ActorStats:
    """What an actor has done so far (read by the logger; plain counters).

    `wait_s` counts every wait (for parameters and for queue space); `params_wait_s` the
    waits for parameters alone.
    """

    env_steps: int = 0
    trajectories: int = 0
    wait_s: float = 0.0
    params_wait_s: float = 0.0


class Actor:
    """A thread that acts in its environment groups and feeds a trajectory queue.

    Each queue item is (trajectory, episodes): the episodes ((task, Episode) pairs) that
    ended within the trajectory's steps, so the statistics the learner logs belong to the
    data it consumed (and repeat exactly in reproducible mode).

    The thread ends when `stop` is set; an exception inside it is kept in `error` (and
    sets `stop`), for the learner to re-raise.
    """

    def __init__(
        self,
        name: str,
        agent: Agent,
        groups: list[EnvGroup],
        *,
        trajectory_len: int,
        params_store: ParamsStore,
        trajectory_queue: TrajectoryQueue,
        stop: threading.Event,
        key: jax.Array,
        device: Any,
        reproducible: bool,
        start_update: int,
        trajectories_per_update: int,
        timeout_s: float,
        acting: ActingSteps | None = None,
    ):
        """Set up the actor (nothing runs until `start`).

        Args:
          name: for thread names and messages, e.g. "actor 0".
          agent: the agent.
          groups: the environment groups, not yet reset; all of equal size.
          trajectory_len: T, transitions per trajectory.
          params_store: where the learner publishes parameters.
          trajectory_queue: where trajectories go.
          stop: the run's stop event.
          key: this actor's PRNG key for sampling actions.
          device: the device the policy runs on.
          reproducible: act each trajectory with exactly `required_version`; otherwise with
            the newest parameters at each trajectory's start.
          start_update: the learner's update count when the actors start.
          trajectories_per_update: how many of this actor's trajectories one update takes.
          timeout_s: how long to wait on the learner before raising Stalled.
          acting: the jitted acting functions, to share them between actors (default: jit
            them for this actor).
        """
        self.name = name
        self.stats = ActorStats()
        self.error: BaseException | None = None
        self._agent = agent
        self._groups = groups
        self._T = trajectory_len
        self._params_store = params_store
        self._queue = trajectory_queue
        self._stop = stop
        self._key = jax.device_put(key, device)
        self._device = device
        self._reproducible = reproducible
        self._start_update = start_update
        self._per_update = trajectories_per_update
        self._timeout_s = timeout_s
        self._episodes: list = []
        acting = acting or ActingSteps.of(agent)
        self._policy_step, self._refresh = acting.policy_step, acting.refresh
        self._start_state = acting.start_state
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def start(self) -> None:
        """Start the thread."""
        self._thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Wait for the thread to end."""
        self._thread.join(timeout)

    def is_alive(self) -> bool:
        """Whether the thread still runs."""
        return self._thread.is_alive()

    def _run(self) -> None:
        try:
            self._act()
        except Stopped:
            pass
        except BaseException as error:  # handed to the learner, which re-raises it
            logger.error("%s failed: %r", self.name, error)
            self.error = error
            self._stop.set()
        finally:
            for group in self._groups:
                group.env.close()

    def _act(self) -> None:
        """The acting loop: trajectory j holds steps jT .. (j+1)T of every group."""
        version, params = self._params_for(0)
        for group in self._groups:
            group.env.async_reset()
            state = self._agent.initial_state(group.num_envs, cache=True)
            group.state = self._refresh(params, jax.device_put(state, self._device))
            group.prev_action = np.zeros(group.num_envs, np.int32)
            group.start_state = self._start_state(group.state)
            self._step(group, params)
        trajectory_index = 0
        while True:
            for _ in range(self._T - 1):
                for group in self._groups:
                    self._step(group, params)
            next_version, next_params = self._params_for(trajectory_index + 1)
            next_start_states = []
            for group in self._groups:
                if next_version != version:
                    group.state = self._refresh(next_params, group.state)
                next_start_states.append(self._start_state(group.state))
                self._step(group, next_params)  # step T: also step 0 of the next trajectory
            self._emit(version)
            for group, start_state in zip(self._groups, next_start_states, strict=True):
                group.start_state = start_state
            trajectory_index += 1
            version, params = next_version, next_params

    def _params_for(self, trajectory_index: int) -> tuple[int, Any]:
        """The parameters (on the actor's device) that act the given trajectory."""
        if self._reproducible:
            version = required_version(trajectory_index, self._start_update, self._per_update)
            params, waited = self._params_store.wait_for(
                version, self._stop, self._timeout_s, self.name)
        else:
            version, params, waited = self._params_store.wait_latest(
                self._stop, self._timeout_s, self.name)
        self.stats.wait_s += waited
        self.stats.params_wait_s += waited
        return version, jax.device_put(params, self._device)

    def _step(self, group: EnvGroup, params: Any) -> None:
        """One step of a group: receive its timestep, choose actions, send them."""
        if self._stop.is_set():
            raise Stopped
        timestep, env_ids = group.env.recv()
        inputs = AgentInput.at(timestep, group.prev_action)
        actions, logits, group.state, self._key = self._policy_step(
            params, inputs, group.state, self._key)
        actions, logits = jax.device_get((actions, logits))
        group.env.send(actions, env_ids)
        group.buffer.append(inputs, actions, logits, timestep.discount)
        group.prev_action = actions
        self.stats.env_steps += group.num_envs
        task = group.env.spec.task
        self._episodes.extend((task, episode) for episode in group.env.pop_episodes())

    def _emit(self, version: int) -> None:
        """Cut every group's T+1 steps into one trajectory and put it on the queue."""
        parts = []
        for group in self._groups:
            inputs, actions, logits, discount = group.buffer.stacked()
            parts.append(types.Trajectory(
                inputs=inputs,
                actions=actions,
                behaviour_logits=logits,
                discount=discount,
                task_id=np.full(group.num_envs, group.task_id, np.int32),
                core_state=group.start_state,  # stays on the device (`types`)
                param_version=np.full(group.num_envs, version, np.int32),
            ))
            group.buffer.keep_last()
        item = (types.concatenate(parts), self._episodes)
        self._episodes = []
        self.stats.wait_s += self._queue.put(item, self._stop, self._timeout_s)
        self.stats.trajectories += 1
