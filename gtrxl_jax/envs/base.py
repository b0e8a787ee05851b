"""The batched-environment interface that every task in gtrxl_jax implements.

Two ways to drive N environments, both returning the `TimeStep` pytree:

- Synchronous (batch_size == num_envs), for evaluation and simple loops:

      timestep = env.reset()                    # all N envs, first=True
      timestep = env.step(actions)              # actions [N], rows ordered by env id

- Asynchronous (envpool's send/recv), for actors that overlap stepping with inference:

      env.async_reset()                         # start every env; returns at once
      timestep, env_ids = env.recv()            # the next B ready envs, ascending ids
      env.send(actions, env_ids)                # their actions [B]; returns at once
      timestep, env_ids = env.recv()            # ... and so on

  With batch_size < num_envs, `recv` returns whichever B environments are ready, so
  the actor runs inference on one group while the others step.

Conventions (the learner relies on them):

- An environment resets itself on the step after its last step: that step's action is
  ignored and it returns the first observation of a new episode with reward 0 and
  first=True. `async_reset`/`reset` also make the next step of every env a first step.
- A last step has last=True and discount 0 if the episode terminated, 1 if it was
  truncated by a time limit (the learner bootstraps from it).
- Rows are ordered by env id.

Subclasses provide `_async_reset`, `_send` and `_recv`; this class derives
first/last/discount from them, checks the arguments and keeps the episode statistics,
so every task follows the conventions in exactly the same way.
"""

import abc
import dataclasses
from typing import Any

import numpy as np

from gtrxl_jax.envs.episodes import Episode, EpisodeTracker
from gtrxl_jax.envs.spec import EnvSpec
from gtrxl_jax.envs.types import TimeStep


@dataclasses.dataclass(frozen=True)
class RawStep:
    """What an environment reports for one batch of rows, before the shared conventions.

    Attributes:
      observation: pytree of arrays [B, ...] matching the spec's observation.
      reward: [B] float32, the reward the learner trains on (clipped when training Atari).
      terminated: [B] bool, the episode ended in a terminal state on this step.
      truncated: [B] bool, the episode was cut by a time limit on this step.
      env_ids: [B] int32, ascending env ids of the rows.
      score: [B] float32, the unclipped reward, for the episode statistics.
      episode_over: [B] bool, the whole episode ended here (for the statistics; differs
        from terminated | truncated only for Atari with episodic life).
      success: [B] bool, whether an ending episode solved the task; None if the task
        has no notion of success.
    """

    observation: Any
    reward: np.ndarray
    terminated: np.ndarray
    truncated: np.ndarray
    env_ids: np.ndarray
    score: np.ndarray
    episode_over: np.ndarray
    success: np.ndarray | None


class VectorEnv(abc.ABC):
    """A batch of N environments of one task, with a synchronous and an asynchronous API."""

    def __init__(self, spec: EnvSpec):
        """Set up the bookkeeping shared by every task.

        Args:
          spec: the environment's spec.
        """
        self._spec = spec
        self._tracker = EpisodeTracker(spec.num_envs)
        self._all_env_ids = np.arange(spec.num_envs, dtype=np.int32)
        # ended[i]: env i's next step is a first step (after a last step or a reset).
        self._ended = np.ones(spec.num_envs, dtype=bool)

    @property
    def spec(self) -> EnvSpec:
        """The environment's static description."""
        return self._spec

    def reset(self) -> TimeStep:
        """Reset every environment (synchronous API).

        Returns:
          TimeStep with rows [N] ordered by env id, all first=True, reward 0.
        """
        self._require_sync("reset")
        self.async_reset()
        timestep, _ = self.recv()
        return timestep

    def step(self, actions: np.ndarray) -> TimeStep:
        """Step every environment (synchronous API).

        Args:
          actions: [N] int, one action per environment in env-id order.

        Returns:
          TimeStep with rows [N] ordered by env id.
        """
        self._require_sync("step")
        self.send(actions, self._all_env_ids)
        timestep, _ = self.recv()
        return timestep

    def async_reset(self) -> None:
        """Start resetting every environment; `recv` returns the first observations."""
        self._ended[:] = True
        self._tracker.restart()
        self._async_reset()

    def send(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        """Send actions to some environments without waiting for the result.

        Args:
          actions: [B] int in [0, num_actions), one per env id.
          env_ids: [B] int, the env ids (as returned by the last `recv`).
        """
        actions, env_ids = self._check_send(actions, env_ids)
        self._send(actions, env_ids)

    def recv(self) -> tuple[TimeStep, np.ndarray]:
        """Wait for the next batch of environments.

        Returns:
          (timestep, env_ids): timestep rows [B] and env_ids [B] int32, in ascending env
          id order, B = spec.batch_size.
        """
        raw = self._recv()
        first = self._ended[raw.env_ids]
        last = raw.terminated | raw.truncated
        self._ended[raw.env_ids] = last
        zero = np.float32(0.0)
        timestep = TimeStep(
            observation=raw.observation,
            reward=np.where(first, zero, raw.reward).astype(np.float32, copy=False),
            discount=(~raw.terminated).astype(np.float32),
            first=first,
            last=last,
        )
        score = np.where(first, zero, raw.score)
        self._tracker.update(raw.env_ids, score, first, raw.episode_over, raw.success)
        return timestep, raw.env_ids

    def pop_episodes(self) -> list[Episode]:
        """Return the episodes completed since the last call (unclipped returns); clear them."""
        return self._tracker.pop()

    @abc.abstractmethod
    def close(self) -> None:
        """Release the environments' resources."""

    def __enter__(self) -> "VectorEnv":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    @abc.abstractmethod
    def _async_reset(self) -> None:
        """Start resetting every environment."""

    @abc.abstractmethod
    def _send(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        """Send checked actions [B] int32 to env ids [B] int32."""

    @abc.abstractmethod
    def _recv(self) -> RawStep:
        """Return the next spec.batch_size ready environments, rows in ascending env id."""

    def _require_sync(self, method: str) -> None:
        if self._spec.is_async:
            raise RuntimeError(
                f"{method}() steps all {self._spec.num_envs} environments at once, but this "
                f"env returns batches of {self._spec.batch_size}; use async_reset(), "
                "send() and recv(), or make the env with batch_size equal to num_envs."
            )

    def _check_send(
        self, actions: np.ndarray, env_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        actions = np.asarray(actions)
        env_ids = np.asarray(env_ids)
        if env_ids.ndim != 1 or not np.issubdtype(env_ids.dtype, np.integer):
            raise ValueError(
                "env_ids must be a 1-D integer array [B], "
                f"got shape {env_ids.shape} and dtype {env_ids.dtype}"
            )
        if actions.shape != env_ids.shape:
            raise ValueError(
                f"actions must have shape {env_ids.shape}, one action per env id, "
                f"got {actions.shape}"
            )
        if not np.issubdtype(actions.dtype, np.integer):
            raise ValueError(
                f"actions must be integers in [0, {self._spec.num_actions}), "
                f"got dtype {actions.dtype}"
            )
        if env_ids.size:
            if env_ids.min() < 0 or env_ids.max() >= self._spec.num_envs:
                raise ValueError(f"env_ids must lie in [0, {self._spec.num_envs}), got {env_ids}")
            if actions.min() < 0 or actions.max() >= self._spec.num_actions:
                raise ValueError(
                    f"actions must lie in [0, {self._spec.num_actions}), got {actions}"
                )
        return actions.astype(np.int32, copy=False), env_ids.astype(np.int32, copy=False)
