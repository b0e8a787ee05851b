"""Passive T-maze: a fast cue-recall task that isolates memory length.

After the passive T-maze of "When Do Transformers Shine in RL? Decoupling Memory
from Credit Assignment" (Ni et al., 2023, https://arxiv.org/abs/2307.03864),
vectorised in numpy over N environments behind the same interface as the envpool
adapter (`VectorEnv`), so an actor cannot tell them apart.

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

Randomness: one numpy Generator seeded by `seed` draws the cues, in env-id order
within each `send`, so a given seed and sequence of calls gives the same episodes.
"""

import numpy as np

from gtrxl_jax.envs.base import RawStep, VectorEnv
from gtrxl_jax.envs.spec import VECTOR, EnvSpec, array_spec

NUM_ACTIONS = 2  # 0 = left, 1 = right
OBSERVATION_SIZE = 4

# Rows of the observation table: 0 and 1 are the cue itself (left, right), then these.
_CORRIDOR, _JUNCTION, _END = 2, 3, 4
_OBSERVATIONS = np.array(
    [
        [1, 0, 0, 0],  # cue: left
        [0, 1, 0, 0],  # cue: right
        [0, 0, 1, 0],  # corridor
        [0, 0, 0, 1],  # junction
        [0, 0, 0, 0],  # end of the episode
    ],
    dtype=np.float32,
)


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
          seed: seed of the cue generator.
          batch_size: rows per `recv` (default N: synchronous use).
          task: the task name to put in the spec (default "TMaze-L{L}").
        """
        if corridor_length < 0:
            raise ValueError(f"corridor_length must be >= 0, got {corridor_length}")
        batch_size = num_envs if batch_size is None else batch_size
        spec = EnvSpec(
            task=task or f"TMaze-L{corridor_length}",
            family="tmaze",
            observation=array_spec((OBSERVATION_SIZE,), np.float32),
            observation_kind=VECTOR,
            num_actions=NUM_ACTIONS,
            num_envs=num_envs,
            batch_size=batch_size,
            has_success=True,
        )
        super().__init__(spec)
        self._corridor_length = corridor_length
        # What the agent sees at each t > 0 (t = 0 shows the cue instead).
        self._view_by_time = np.array([_END] + [_CORRIDOR] * corridor_length + [_JUNCTION, _END])
        self._rng = np.random.default_rng(seed)
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
        self._cue[:] = self._rng.integers(0, 2, size=self._spec.num_envs)
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
        self._cue[env_ids[restart]] = self._rng.integers(0, 2, size=int(restart.sum()))
        self._in_flight[env_ids] = True
        self._ready = np.concatenate([self._ready, env_ids])

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
        view = np.where(time == 0, self._cue[env_ids], self._view_by_time[time])
        terminated = view == _END
        reward = self._reward[env_ids]
        return RawStep(
            observation=_OBSERVATIONS[view],
            reward=reward,
            terminated=terminated,
            truncated=np.zeros_like(terminated),
            env_ids=env_ids,
            score=reward,
            episode_over=terminated,
            success=reward > 0,
        )
