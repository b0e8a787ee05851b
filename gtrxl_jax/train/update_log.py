"""The host's log of dispatched updates, read late so that the host does not idle the device.

The learner's update is dispatched asynchronously; reading its metrics waits for it. The
loops read an update's metrics only once the host has other work behind it: the
actor-learner loop after gathering the next batch (so the gathering overlaps the device's
work, and no update is dispatched after one that ends a streak of skipped updates), the
on-device loop after dispatching the next update (so the device always has one queued).
Each read update's metrics go to the MetricsLogger and the non-finite streak; every
`log_interval_updates` (and at each checkpoint and periodic evaluation) a record is written.

    log = UpdateLog(metrics_logger, streak, config.run.log_interval_updates,
                    config.run.checkpoint_interval_updates)
    for ...:
        batch = gather(...)
        log.log_finished(keep=0)                       # update u-1, done by now
        state, metrics = update(state, batch)          # update u, dispatched
        log.add(u, env_steps, metrics, to_host, explain)
    log.log_finished(keep=0)
"""

import collections
import functools
from collections.abc import Callable
from typing import NamedTuple

import jax

from gtrxl_jax.envs.episodes import EpisodeTotals
from gtrxl_jax.train.learning import NonFiniteError
from gtrxl_jax.train.metrics import MetricsLogger, MetricsWriteError
from gtrxl_jax.train.nonfinite import NonFiniteStreak

# metrics (host floats) -> (the metrics to average, each task's episode totals)
ToHost = Callable[[dict[str, float]], tuple[dict[str, float], dict[str, EpisodeTotals]]]


class _Dispatched(NamedTuple):
    update: int
    env_steps: int
    metrics: dict  # on the device until read
    to_host: ToHost
    explain: Callable[[dict[str, float]], list[str]] | None


class UpdateLog:
    """Updates dispatched to the device whose metrics the host reads one behind."""

    def __init__(self, metrics_logger: MetricsLogger, streak: NonFiniteStreak,
                 log_interval_updates: int, checkpoint_interval_updates: int,
                 extra: Callable[[], dict[str, float]] = dict):
        """Log through `metrics_logger`, check `streak`, write every `log_interval_updates`.

        A record is also written at every checkpoint's update, so that a run resumed from a
        checkpoint has every update before it in some record (a resumed run keeps the
        records up to its checkpoint, `metrics.keep_records_up_to`). `extra()` gives further
        values for each written record (e.g. the actors' telemetry).
        """
        self._logger = metrics_logger
        self._streak = streak
        self._intervals = (log_interval_updates, checkpoint_interval_updates)
        self._extra = extra
        self._dispatched: collections.deque[_Dispatched] = collections.deque()
        self._evaluated: dict[int, dict[str, float]] = {}

    @property
    def nonfinite_streak(self) -> int:
        """The skipped updates in a row among those read so far (for the checkpoint)."""
        return self._streak.count

    def add(self, update: int, env_steps: int, metrics: dict, to_host: ToHost,
            explain: Callable[[dict[str, float]], list[str]] | None = None) -> None:
        """Note a dispatched update (its metrics still on the device).

        Args:
          update: the update's number.
          env_steps: env steps consumed once it is done.
          metrics: its metrics, one copy (not replicated), on the device.
          to_host: turns its host metrics into (metrics to average, episode totals by task).
          explain: given its host metrics, says where non-finite values came from
            (`nonfinite.explain`), for the error that ends a streak of skipped updates.
        """
        self._dispatched.append(_Dispatched(update, env_steps, metrics, to_host, explain))

    def add_evaluation(self, update: int, evaluated: dict[str, float]) -> None:
        """Attach a periodic evaluation's metrics to `update`'s record (written with it)."""
        self._evaluated[update] = evaluated

    def log_remaining(self) -> NonFiniteError | MetricsWriteError | None:
        """Read and log every update still unread, past a streak's end (a loop that stops).

        Returns:
          The first NonFiniteError a streak raised on the way, or the MetricsWriteError
          that ended the writing; None if neither.
        """
        first = None
        while self._dispatched:
            try:
                self.log_finished(keep=len(self._dispatched) - 1)
            except NonFiniteError as error:
                first = first or error
            except MetricsWriteError as error:
                return first or error
        return first

    def log_finished(self, keep: int) -> None:
        """Read and log every update but the newest `keep` (waiting for them to finish).

        Raises:
          NonFiniteError: from the streak, once too many updates in a row were skipped.
          MetricsWriteError: a record could not be written.
        """
        while len(self._dispatched) > keep:
            done = self._dispatched.popleft()
            host = {k: float(v) for k, v in jax.device_get(done.metrics).items()}
            metrics, episodes = done.to_host(dict(host))
            self._logger.add_update(metrics, episodes, done.env_steps)
            if (any(done.update % interval == 0 for interval in self._intervals)
                    or done.update in self._evaluated):
                self._logger.write(done.update, done.env_steps,
                                   {**self._extra(), **self._evaluated.pop(done.update, {})})
            # After its record: the update that ends a streak is logged under its number.
            explain = None if done.explain is None else functools.partial(done.explain, host)
            self._streak.check(host, done.update, explain=explain)
