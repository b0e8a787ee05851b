"""Episode statistics kept on the host: return, length and success of completed episodes.

Every environment in gtrxl_jax feeds one `EpisodeTracker` with the *unclipped*
reward, so the statistics are the task's true score even when the learner trains
on clipped rewards or on Atari's per-life episodes.
"""

import dataclasses
import math

import numpy as np


@dataclasses.dataclass(frozen=True)
class Episode:
    """One completed episode.

    Attributes:
      env_id: the environment it ran in.
      episode_return: sum of the unclipped rewards.
      length: number of actions that took effect (steps that were not a first step).
      success: whether the task was solved, or None where the task has no notion of it.
    """

    env_id: int
    episode_return: float
    length: int
    success: bool | None


class EpisodeTracker:
    """Accumulates per-environment returns and lengths; collects completed episodes."""

    def __init__(self, num_envs: int):
        """Start every environment with an empty episode.

        Args:
          num_envs: number of environments N; env ids are 0 .. N-1.
        """
        self._returns = np.zeros(num_envs, np.float64)
        self._lengths = np.zeros(num_envs, np.int64)
        self._completed: list[Episode] = []

    def restart(self) -> None:
        """Forget the episodes in progress (after a reset of every environment)."""
        self._returns[:] = 0.0
        self._lengths[:] = 0

    def update(
        self,
        env_ids: np.ndarray,
        reward: np.ndarray,
        first: np.ndarray,
        episode_over: np.ndarray,
        success: np.ndarray | None = None,
    ) -> None:
        """Add one step of each listed environment.

        Args:
          env_ids: [B] int, distinct env ids of the rows.
          reward: [B] unclipped reward received on this step.
          first: [B] bool, first steps of an episode (the action before them was ignored,
            so they do not add to the length).
          episode_over: [B] bool, the whole episode ended on this step. Usually equal to
            `last`; for Atari with episodic life only a game over (or time limit) counts.
          success: [B] bool, whether an ending episode solved the task; None where the task
            has no notion of success.
        """
        self._returns[env_ids] += reward
        self._lengths[env_ids] += ~first
        for row in np.flatnonzero(episode_over):
            env_id = int(env_ids[row])
            self._completed.append(
                Episode(
                    env_id=env_id,
                    episode_return=float(self._returns[env_id]),
                    length=int(self._lengths[env_id]),
                    success=None if success is None else bool(success[row]),
                )
            )
            self._returns[env_id] = 0.0
            self._lengths[env_id] = 0

    def pop(self) -> list[Episode]:
        """Return the episodes completed since the last call, oldest first, and clear them."""
        completed, self._completed = self._completed, []
        return completed


@dataclasses.dataclass(frozen=True)
class EpisodeTotals:
    """Sums over completed episodes: they add up across updates, devices and tasks.

    The one place where episode statistics become averages (`summary`), whether the episodes
    ended on the host (`of`) or were summed on a device.

    Attributes:
      episodes: how many episodes.
      return_sum: the sum of their returns.
      length_sum: the sum of their lengths.
      success_sum: how many of them succeeded.
      success_count: how many of them report success at all.
    """

    episodes: float = 0.0
    return_sum: float = 0.0
    length_sum: float = 0.0
    success_sum: float = 0.0
    success_count: float = 0.0

    @classmethod
    def of(cls, episodes: list[Episode]) -> "EpisodeTotals":
        """The totals of some completed episodes."""
        successes = [e.success for e in episodes if e.success is not None]
        return cls(episodes=float(len(episodes)),
                   return_sum=float(sum(e.episode_return for e in episodes)),
                   length_sum=float(sum(e.length for e in episodes)),
                   success_sum=float(sum(successes)), success_count=float(len(successes)))

    def __add__(self, other: "EpisodeTotals") -> "EpisodeTotals":
        return EpisodeTotals(*(a + b for a, b in zip(dataclasses.astuple(self),
                                                     dataclasses.astuple(other), strict=True)))

    def summary(self) -> dict[str, float]:
        """Averages: {"episodes": count, "episode_return", "episode_length", "success"}.

        NaN where undefined: no episode, or (success) no episode that reports one.
        """
        def mean(total: float, count: float) -> float:
            return total / count if count else math.nan

        return {"episodes": int(self.episodes),
                "episode_return": mean(self.return_sum, self.episodes),
                "episode_length": mean(self.length_sum, self.episodes),
                "success": mean(self.success_sum, self.success_count)}


def summarize(episodes: list[Episode]) -> dict[str, float]:
    """Average the return, length and success of some episodes (see `EpisodeTotals.summary`)."""
    return EpisodeTotals.of(episodes).summary()
