"""The two hand-offs between actor threads and the learner: trajectories and parameters.

    actor --TrajectoryQueue--> learner        (bounded: its depth bounds the policy lag)
    actor <---ParamsStore----- learner        (versioned: version = learner updates so far)

Every wait polls a stop event (so a shutdown is seen within a fraction of a second) and
gives up after a time-out with a `Stalled` error that says which side stopped delivering.
"""

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

_POLL_S = 0.1


class Stalled(RuntimeError):  # noqa: N818  (reads as "the run stalled")
    """One side of the actor-learner loop waited too long for the other."""


class Stopped(Exception):  # noqa: N818  (a signal, not an error)
    """The run is stopping; the waiting thread should wind down."""


class TrajectoryQueue:
    """A bounded queue of trajectories from one actor to the learner."""

    def __init__(self, maxsize: int, name: str):
        """Make an empty queue.

        Args:
          maxsize: how many trajectories it holds before `put` waits.
          name: who fills it (e.g. "actor 0"), for error messages.
        """
        self._queue = queue.Queue(maxsize)
        self.name = name

    def qsize(self) -> int:
        """How many trajectories wait in the queue (approximate)."""
        return self._queue.qsize()

    def put(self, item: Any, stop: threading.Event, timeout_s: float) -> float:
        """Put an item, waiting while the queue is full.

        Returns:
          Seconds spent waiting.

        Raises:
          Stopped: `stop` was set while waiting.
          Stalled: the learner took nothing for `timeout_s` seconds.
        """
        start = time.monotonic()
        while True:
            try:
                self._queue.put(item, timeout=_POLL_S)
                return time.monotonic() - start
            except queue.Full:
                pass
            if stop.is_set():
                raise Stopped
            if time.monotonic() - start > timeout_s:
                raise Stalled(
                    f"{self.name} waited {timeout_s:.0f} s to hand over a trajectory: the "
                    "learner stalled (it took nothing from a full queue).")

    def get(self, stop: threading.Event, timeout_s: float, alive: Any = None) -> tuple[Any, float]:
        """Take the oldest item, waiting while the queue is empty.

        Args:
          stop: stop event, polled while waiting.
          timeout_s: how long to wait before raising Stalled.
          alive: called while waiting; may raise (e.g. an actor's error) to end the wait.

        Returns:
          (item, seconds spent waiting).

        Raises:
          Stopped: `stop` was set while waiting.
          Stalled: nothing arrived for `timeout_s` seconds.
        """
        start = time.monotonic()
        while True:
            try:
                return self._queue.get(timeout=_POLL_S), time.monotonic() - start
            except queue.Empty:
                pass
            if alive is not None:
                alive()
            if stop.is_set():
                raise Stopped
            if time.monotonic() - start > timeout_s:
                raise Stalled(
                    f"The learner waited {timeout_s:.0f} s for a trajectory from "
                    f"{self.name}: the actor stalled (is an environment hanging?).")


class ParamsStore:
    """The learner's published parameters, by version (the number of updates behind them).

    Keeps the latest few versions, so that an actor in reproducible mode can take exactly
    the version it needs even when the learner has already published a newer one.
    """

    def __init__(self, keep: int = 3):
        """Make an empty store that keeps the `keep` latest versions."""
        self._versions: dict[int, Any] = {}
        self._keep = keep
        self._changed = threading.Condition()

    def publish(self, version: int, params: Any) -> None:
        """Make `params` (which must not be donated or modified later) available as `version`."""
        with self._changed:
            self._versions[version] = params
            for old in sorted(self._versions)[: -self._keep]:
                del self._versions[old]
            self._changed.notify_all()

    def wait_latest(
        self, stop: threading.Event, timeout_s: float, who: str
    ) -> tuple[int, Any, float]:
        """Wait until any version is published and return the newest.

        For a free-running actor, which acts with whatever is newest; an actor process's
        store receives its first version over a pipe after its actor has started.

        Returns:
          (its version, its params, seconds spent waiting).

        Raises:
          Stopped: `stop` was set while waiting.
          Stalled: nothing was published within `timeout_s` seconds.
        """
        with self._changed:
            waited = self._wait_until(
                lambda: bool(self._versions), stop, timeout_s,
                lambda: f"{who} waited {timeout_s:.0f} s for the learner's first parameters: "
                        "the learner stalled.")
            version = max(self._versions)
            return version, self._versions[version], waited

    def wait_for(
        self, version: int, stop: threading.Event, timeout_s: float, who: str
    ) -> tuple[Any, float]:
        """Wait until `version` is published and return it.

        Returns:
          (params, seconds spent waiting).

        Raises:
          Stopped: `stop` was set while waiting.
          Stalled: the version did not appear within `timeout_s` seconds.
          RuntimeError: the version was published and already dropped (a logic error).
        """
        def published() -> bool:
            if version in self._versions:
                return True
            if self._versions and min(self._versions) > version:
                raise RuntimeError(
                    f"{who} needs parameters version {version}, but the store already "
                    f"dropped it (it holds {sorted(self._versions)}).")
            return False

        with self._changed:
            waited = self._wait_until(
                published, stop, timeout_s,
                lambda: f"{who} waited {timeout_s:.0f} s for parameters version {version}: "
                        "the learner stalled (latest published: "
                        f"{max(self._versions) if self._versions else 'none'}).")
            return self._versions[version], waited

    def _wait_until(self, ready: Callable[[], bool], stop: threading.Event, timeout_s: float,
                    stalled: Callable[[], str]) -> float:
        """Wait, holding the store's lock, until `ready()`; return the seconds waited.

        Raises:
          Stopped: `stop` was set while waiting.
          Stalled: with the message `stalled()`, after `timeout_s` seconds.
        """
        start = time.monotonic()
        while not ready():
            if stop.is_set():
                raise Stopped
            if time.monotonic() - start > timeout_s:
                raise Stalled(stalled())
            self._changed.wait(_POLL_S)
        return time.monotonic() - start

    def wait_after(self, version: int, stop: threading.Event) -> tuple[int, Any]:
        """Wait until a version newer than `version` is published; return the oldest kept one.

        For forwarding every version in order (an actor process's copy of the store): a
        version already dropped is skipped. Waits as long as it takes.

        Returns:
          (its version, its params).

        Raises:
          Stopped: `stop` was set while waiting.
        """
        with self._changed:
            while True:
                newer = [v for v in self._versions if v > version]
                if newer:
                    return min(newer), self._versions[min(newer)]
                if stop.is_set():
                    raise Stopped
                self._changed.wait(_POLL_S)
