"""An actor in a process of its own (learner.actor_processes): envs and policy out of the learner's.

    learner's process                                  actor process (spawned)
    ParamsStore --forward thread--> params pipe --> receive thread --> ParamsStore
    TrajectoryQueue <--receive thread-- data pipe <-- PipeSender <-- Actor thread
                     (each trajectory taken: "taken" on the params pipe, to PipeSender)

Why: XLA:CPU runs every jitted computation of a process on one intra-op thread pool, so
an actor thread's small policy steps queue behind the learner's long kernels
(docs/performance.md, "End to end"), and actor threads share the learner's GIL. In a
process of its own, an actor has its own pool and interpreter. It acts on that process's
CPU (JAX there sees no accelerator), as a CPU host's actors would.

`ActorProcess` stands in for an `Actor` in the learner's process (name, stats, error,
start, join, is_alive), so the loop treats both alike; its stats are the child's, sent
with each trajectory and every STATS_INTERVAL_S. The child makes its actor from the
same `ActorPlan`, and gets every parameter version in order, so a reproducible run's data
are the same as with threads. An error in the child (an environment's, a stall) comes
back and is raised as is; a child that dies without a word raises ActorProcessError.

Programs that call `train` with actor processes must guard their entry point with
`if __name__ == "__main__":`, as Python's spawned processes require.
"""

import dataclasses
import logging
import multiprocessing
import pickle
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import jax

from gtrxl_jax.train.actor import Actor, ActorStats
from gtrxl_jax.train.handoff import ParamsStore, Stopped, TrajectoryQueue

# (plan, params_store, trajectory_queue, stop, device) -> an Actor (`builder.build_actor`);
# a module-level function, so that it pickles by name into the spawned process.
BuildActor = Callable[[Any, ParamsStore, Any, threading.Event, Any], Actor]

logger = logging.getLogger(__name__)

_SPAWN = multiprocessing.get_context("spawn")  # fork is unsafe once JAX runs threads
_CLOSE_S = 5.0
_POLL_S = 0.1  # how often a sender waiting for its trajectory to be taken checks the stop
STATS_INTERVAL_S = 0.25  # how often an actor process reports its stats between trajectories
_SHARED_JAX_SETTINGS = (  # the child compiles through the learner's process's cache
    "jax_compilation_cache_dir",
    "jax_persistent_cache_min_compile_time_secs",
    "jax_persistent_cache_min_entry_size_bytes",
)


class ActorProcessError(RuntimeError):
    """An actor process ended without reporting an error (killed, or crashed in C code)."""


class PickledParams:
    """Each parameter version fetched to the host and pickled once, for all actor processes.

    The message ("params", version, host arrays) as pickled bytes, which every process's
    forward thread sends as is: with several actor processes the learner's process does
    not repeat the device-to-host copy and the pickling (~30 ms for the reference core's
    26 MB) per process. Only the newest version asked for is kept; a forward thread that
    lags behind pickles its older version itself, without evicting the newer one.
    """

    def __init__(self):
        """An empty cache."""
        self._lock = threading.Lock()
        self._version: int | None = None
        self._message = b""

    def message(self, version: int, params: Any) -> bytes:
        """The pickled message of `version`, whose parameters are `params`."""
        with self._lock:
            if version == self._version:
                return self._message
            message = pickle.dumps(("params", version, jax.device_get(params)),
                                   protocol=pickle.HIGHEST_PROTOCOL)
            if self._version is None or version > self._version:
                self._version, self._message = version, message
            return message


class ActorProcess:
    """An actor running in a spawned process, seen from the learner's process as an Actor."""

    def __init__(self, plan: Any, build: BuildActor, params_store: ParamsStore,
                 trajectory_queue: TrajectoryQueue, stop: threading.Event,
                 pickled_params: PickledParams):
        """Set up the process and its two pipes (nothing runs until `start`).

        Args:
          plan: what the actor is made of (`builder.ActorPlan`, picklable).
          build: makes the actor from its plan, in the child.
          params_store: the learner's published parameters; every version is forwarded.
          trajectory_queue: where the actor's trajectories go.
          stop: the run's stop event; set when the child fails.
          pickled_params: the pickled versions, shared by this store's actor processes.
        """
        self.name = plan.name
        self.stats = ActorStats()
        self.error: BaseException | None = None
        self._plan = plan
        self._params_store, self._queue, self._stop = params_store, trajectory_queue, stop
        self._pickled_params = pickled_params
        self._child_params, self._params_pipe = _SPAWN.Pipe(duplex=False)
        self._data_pipe, self._child_data = _SPAWN.Pipe(duplex=False)
        self._send_lock = threading.Lock()
        jax_settings = {name: getattr(jax.config, name) for name in _SHARED_JAX_SETTINGS}
        self._process = _SPAWN.Process(
            target=run_child, name=plan.name, daemon=True,
            args=(plan, build, jax_settings, self._child_params, self._child_data))
        self._threads = [
            threading.Thread(target=self._forward_params, name=f"{plan.name} params",
                             daemon=True),
            threading.Thread(target=self._receive, name=f"{plan.name} data", daemon=True),
        ]

    def start(self) -> None:
        """Spawn the process, then forward parameters and receive trajectories."""
        self._process.start()
        self._child_params.close()  # the child's ends: a dead child then reads as EOF here
        self._child_data.close()
        for thread in self._threads:
            thread.start()

    def join(self, timeout: float | None = None) -> None:
        """Tell the child to stop, wait up to `timeout` s for it, then terminate it."""
        self._send(("stop",))
        self._process.join(timeout)
        if self._process.is_alive():
            logger.warning("%s did not stop within %s s; terminating it.", self.name, timeout)
            self._process.terminate()
            self._process.join(_CLOSE_S)
        for thread in self._threads:
            thread.join(_CLOSE_S)
        self._params_pipe.close()
        self._data_pipe.close()

    def is_alive(self) -> bool:
        """Whether the process or one of its threads here still runs."""
        return self._process.is_alive() or any(t.is_alive() for t in self._threads)

    def _send(self, message: tuple | bytes) -> bool:
        """Send a message (or one already pickled) to the child; False if it is gone."""
        payload = message if isinstance(message, bytes) else pickle.dumps(message)
        try:
            with self._send_lock:
                self._params_pipe.send_bytes(payload)  # the child's recv() unpickles it
            return True
        except OSError:  # the child ended; `_receive` reports why
            return False

    def _forward_params(self) -> None:
        """Send each published parameter version to the child, in order, as host arrays."""
        version = -1
        try:
            while True:
                version, params = self._params_store.wait_after(version, self._stop)
                if not self._send(self._pickled_params.message(version, params)):
                    return
        except Stopped:
            pass

    def _receive(self) -> None:
        """Put the child's trajectories on the queue; keep its stats and error."""
        try:
            while True:
                kind, *payload = self._data_pipe.recv()
                if kind == "error":
                    self._fail(payload[0])
                elif kind == "stats":
                    self.stats = ActorStats(**payload[0])
                elif not self._stop.is_set():  # after a stop: drain, so the child can end
                    item, stats = payload
                    self._queue.put(item, self._stop, self._plan.stall_timeout_s)
                    self.stats = ActorStats(**stats)
                    self._send(("taken",))
        except (EOFError, OSError):  # the child ended (or `join` closed the pipe)
            if not self._stop.is_set():
                self._process.join(_CLOSE_S)
                self._fail(ActorProcessError(
                    f"{self.name} (pid {self._process.pid}) ended with exit code "
                    f"{self._process.exitcode} without reporting an error: killed (out of "
                    "memory?) or crashed in native code; see its output above."))
        except Stopped:
            self._drain()
        except BaseException as error:  # a stall of the learner: the run goes down with it
            self._fail(error)
            self._drain()

    def _drain(self) -> None:
        """Read and drop the child's messages until it ends (it may be blocked sending)."""
        try:
            while True:
                self._data_pipe.recv()
        except (EOFError, OSError):
            pass

    def _fail(self, error: BaseException) -> None:
        if self.error is None:
            logger.error("%s failed: %r", self.name, error)
            self.error = error
        self._stop.set()


class PipeSender:
    """The child's stand-in for a TrajectoryQueue: `put` sends the item to the learner's process.

    `put` blocks until the learner's process has put the item on its queue (`taken`, from
    the "taken" message), so that its queue bounds the lag: a pipe alone would take a small
    task's trajectories into its buffer (~64 KiB) without waiting. The actor's stats go
    along with each item, and every STATS_INTERVAL_S in between (`send_stats_until`), so
    the learner's metrics see the actor's progress within a trajectory.
    """

    def __init__(self, pipe):
        """Send on `pipe`; `stats` is the actor's, once it exists."""
        self._pipe = pipe
        self._lock = threading.Lock()  # the actor's thread and the stats thread both send
        self._taken = threading.Semaphore(0)
        self.stats = ActorStats()

    def taken(self) -> None:
        """The learner's process has put the oldest item not yet acknowledged on its queue."""
        self._taken.release()

    def _send(self, *message: Any) -> None:
        with self._lock:
            self._pipe.send(message)

    def put(self, item: Any, stop: threading.Event, timeout_s: float) -> float:
        """Send one (trajectory, episodes) item and wait until it is taken.

        Returns:
          The seconds it took.

        Raises:
          Stopped: `stop` was set first.
        """
        del timeout_s  # the learner's process waits on its queue with it
        start = time.monotonic()
        trajectory, episodes = item
        item = (trajectory.replace(core_state=jax.device_get(trajectory.core_state)), episodes)
        self._send("trajectory", item, dataclasses.asdict(self.stats))
        while not self._taken.acquire(timeout=_POLL_S):
            if stop.is_set():
                raise Stopped
        return time.monotonic() - start

    def send_stats_until(self, stop: threading.Event) -> None:
        """Send the actor's stats every STATS_INTERVAL_S until `stop` (or the pipe closes)."""
        try:
            while not stop.wait(STATS_INTERVAL_S):
                self._send("stats", dataclasses.asdict(self.stats))
        except OSError:
            pass  # the learner's process is gone, or the child is ending

    def send_error(self, error: BaseException) -> None:
        """Report an error to the learner's process (as text if it does not pickle)."""
        try:
            try:
                self._send("error", error)
            except (pickle.PicklingError, TypeError, AttributeError):  # nothing was sent
                self._send("error", RuntimeError(f"{type(error).__name__}: {error}"))
        except OSError:
            pass  # the learner's process is gone


def run_child(plan: Any, build: BuildActor, jax_settings: dict, params_pipe,
              data_pipe) -> None:
    """The actor process: make the plan's actor on the CPU and run it until told to stop.

    Args:
      plan: what the actor is made of.
      build: makes the actor from its plan.
      jax_settings: jax.config values to take over from the learner's process.
      params_pipe: where parameter versions (and "stop") come from.
      data_pipe: where trajectories (and an error) go.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the learner, which stops us
    jax.config.update("jax_platforms", "cpu")
    for name, value in jax_settings.items():
        jax.config.update(name, value)
    stop = threading.Event()
    store = ParamsStore()
    sender = PipeSender(data_pipe)
    try:
        actor = build(plan, store, sender, stop, jax.devices("cpu")[0])
        sender.stats = actor.stats
        threading.Thread(target=receive_params, args=(params_pipe, store, stop, sender.taken),
                         name="params", daemon=True).start()
        threading.Thread(target=sender.send_stats_until, args=(stop,), name="stats",
                         daemon=True).start()
        actor.start()
        actor.join()
        if actor.error is not None:
            sender.send_error(actor.error)
    except BaseException as error:  # set-up failed (e.g. an environment would not start)
        sender.send_error(error)
    finally:
        data_pipe.close()


def receive_params(pipe, store: ParamsStore, stop: threading.Event,
                   taken: Callable[[], None]) -> None:
    """The child's parameter versions, as the learner's process sends them, until "stop".

    A "taken" message (a trajectory on the learner's queue) calls `taken`.
    """
    try:
        while True:
            kind, *payload = pipe.recv()
            if kind == "stop":
                break
            if kind == "taken":
                taken()
            else:
                store.publish(*payload)
    except (EOFError, OSError):
        pass  # the learner's process is gone
    finally:
        stop.set()
