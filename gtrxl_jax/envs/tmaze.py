"""Passive T-maze: a fast cue-recall task that isolates memory length.

After the passive T-maze of "When Do Transformers Shine in RL? Decoupling Memory
from Credit Assignment" (Ni et al., 2023, https://arxiv.org/abs/2307.03864),
vectorised in numpy over N environments behind the same interface as the envpool
adapter (`VectorEnv`), so an actor cannot tell them apart. Simpler than theirs: the
agent moves down the corridor by itself (2 actions, only the junction's counts) and no
step is penalised, so it tests recall alone; their agent walks with 4 moves under a
per-step penalty, and their cue lies L steps before the choice, here L+1.

One episode with corridor length L, as timesteps t = 0 .. L+2:

    t = 0         start: the cue, left or right, drawn uniformly   obs [1,0,0,0] / [0,1,0,0]
    t = 1 .. L    corridor: the same observation at every step     obs [0,0,1,0]
    t = L+1       junction: the action taken here is the choice    obs [0,0,0,1]
    t = L+2       end (last=True, discount 0): reward 1 if the     obs [0,0,0,0]
                  choice (0 = left, 1 = right) matched the cue, else 0

All other rewards are 0, and only the choice at the junction matters: the maze is
passive, so actions elsewhere are ignored. An episode takes L+2 actions (its
length in the episode statistics); the cue lies L+1 steps before the choice. The
observation carries no time or position, so a feed-forward policy sees the same
junction whatever the cue and succeeds at most half the time; a policy that
remembers the cue succeeds always. Success = correct choice.

Randomness: environment i's episode e has the cue `cue_of(derive_key(stream_i, e))`,
where stream_i is row i of `stream_keys(seed, N)` (`gtrxl_jax.envs.counter_keys`), e counts
the episodes environment i has started (across resets). So a given seed gives the same
episodes whatever the order of the calls, and the JAX T-maze (`gtrxl_jax.envs.tmaze_jax`),
reset with `reset_keys(seed, N)`, plays the same episodes step for step.
"""

from typing import Any

import numpy as np

from gtrxl_jax.envs.base import RawStep, VectorEnv
from gtrxl_jax.envs.counter_keys import derive_key, stream_keys
from gtrxl_jax.envs.spec import VECTOR, EnvSpec, array_spec

NUM_ACTIONS = 2  # 0 = left, 1 = right
OBSERVATION_SIZE = 4

# Rows of the observation table: 0 and 1 are the cue itself (left, right), then these.
_CORRIDOR, _JUNCTION, _END = 2, 3, 4
OBSERVATIONS = np.array(
    [
        [1, 0, 0, 0],  # cue: left
        [0, 1, 0, 0],  # cue: right
        [0, 0, 1, 0],  # corridor
        [0, 0, 0, 1],  # junction
        [0, 0, 0, 0],  # end of the episode
    ],
    dtype=np.float32,
)


def describe(corridor_length: int, task: str | None = None) -> dict[str, Any]:
    """The T-maze's static description: the `EnvSpec` fields that do not depend on the batch.

    Args:
      corridor_length: L >= 0.
      task: the task name (default "TMaze-L{L}").

    Returns:
      task, family, observation, observation_kind, num_actions and has_success.
    """
    if corridor_length < 0:
        raise ValueError(f"corridor_length must be >= 0, got {corridor_length}")
    return dict(
        task=task or f"TMaze-L{corridor_length}",
        family="tmaze",
        observation=array_spec((OBSERVATION_SIZE,), np.float32),
        observation_kind=VECTOR,
        num_actions=NUM_ACTIONS,
        has_success=True,
    )


def cue_of(episode_key: Any) -> Any:
    """The cue (0 = left, 1 = right) of the episode with this key: uint32 [..., 2] -> [...]."""
    return (episode_key[..., 0] & 1).astype(np.int32)


def view_of(time: Any, cue: Any, corridor_length: int, where: Any = np.where) -> Any:
    """The row of `OBSERVATIONS` that the agent sees at time t of an episode.

    Args:
      time: int [...], t within the episode (0 .. L+2, see the module doc).
      cue: int [...], the episode's cue.
      corridor_length: L.
      where: `np.where` or `jnp.where`, for numpy or JAX arrays.

    Returns:
      int [...]: the cue at t = 0, then corridor, junction and end.
    """
    after_corridor = where(time == corridor_length + 1, _JUNCTION, _END)
    return where(time == 0, cue, where(time <= corridor_length, _CORRIDOR, after_corridor))


class TMaze(VectorEnv):
    """N passive T-mazes with corridor length L, stepped together or asynchronously."""

    def __init__(
        self,
        corridor_length: int,
        num_envs: int,
        seed: int = 0,
        batch_size: int | None = None,
        task: str | None = None,
    ):
        """Build N T-mazes.

        Args:
          corridor_length: L >= 0, the number of corridor steps between cue and junction.
          num_envs: N >= 1.
          seed: 0 <= seed < 2**31, the seed of the cues (see the module doc).
          batch_size: rows per `recv` (default N: synchronous use).
          task: the task name to put in the spec (default "TMaze-L{L}").
        """
        batch_size = num_envs if batch_size is None else batch_size
        spec = EnvSpec(**describe(corridor_length, task), num_envs=num_envs, batch_size=batch_size)
        super().__init__(spec)
        self._corridor_length = corridor_length
        self._streams = stream_keys(seed, num_envs)  # uint32 [N, 2]
        self._episodes = np.zeros(num_envs, np.uint32)  # episodes each env has started
        self._time = np.zeros(num_envs, np.int64)  # t within the episode, see module doc
        self._cue = np.zeros(num_envs, np.int64)  # 0 = left, 1 = right
        self._reward = np.zeros(num_envs, np.float32)  # reward of each env's latest step
        self._in_flight = np.zeros(num_envs, dtype=bool)  # stepped, not yet received
        self._ready = np.empty(0, np.int32)  # env ids with a result, oldest first

    @property
    def corridor_length(self) -> int:
        """L, the number of corridor steps between the cue and the junction."""
        return self._corridor_length

    def close(self) -> None:
        """Release nothing: the T-maze holds only numpy arrays."""

    def _async_reset(self) -> None:
        self._time[:] = 0
        self._start_episodes(self._all_env_ids)
        self._reward[:] = 0.0
        self._in_flight[:] = True
        self._ready = self._all_env_ids.copy()

    def _send(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        if self._in_flight[env_ids].any():
            busy = env_ids[self._in_flight[env_ids]]
            raise ValueError(
                f"env_ids {busy} already have a step in flight; recv() their result "
                "before sending them new actions"
            )
        end = self._corridor_length + 2
        time = self._time[env_ids]
        restart = time == end
        chose = time == end - 1
        self._reward[env_ids] = chose & (actions == self._cue[env_ids])
        self._time[env_ids] = np.where(restart, 0, time + 1)
        self._start_episodes(env_ids[restart])
        self._in_flight[env_ids] = True
        self._ready = np.concatenate([self._ready, env_ids])

    def _start_episodes(self, env_ids: np.ndarray) -> None:
        """Draw the cues of the next episodes of some environments (env_ids [B])."""
        self._cue[env_ids] = cue_of(derive_key(self._streams[env_ids], self._episodes[env_ids]))
        self._episodes[env_ids] += np.uint32(1)

    def _recv(self) -> RawStep:
        batch_size = self._spec.batch_size
        if self._ready.size < batch_size:
            raise RuntimeError(
                f"recv() needs {batch_size} environments with a result but only "
                f"{self._ready.size} have one; send() actions for the env ids of the "
                "previous recv() first"
            )
        env_ids = np.sort(self._ready[:batch_size])
        self._ready = self._ready[batch_size:]
        self._in_flight[env_ids] = False
        time = self._time[env_ids]
        view = view_of(time, self._cue[env_ids], self._corridor_length)
        terminated = view == _END
        reward = self._reward[env_ids]
        return RawStep(
            observation=OBSERVATIONS[view],
            reward=reward,
            terminated=terminated,
            truncated=np.zeros_like(terminated),
            env_ids=env_ids,
            score=reward,
            episode_over=terminated,
            success=reward > 0,
        )
