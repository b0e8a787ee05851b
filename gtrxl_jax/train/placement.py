"""Where a run computes: jax.distributed, which devices learn and act, the data-parallel learner.

The only module that knows devices, hosts and replication. The learner's update itself is
`learning.Learning.update`, a pure function; here it runs data-parallel:

    learner = Learner(learning, devices)
    state = learner.replicate(learning.init_state(key))   # one copy per device
    state, metrics = learner.update(state, batch)          # batch [T+1, B_local] (`types`)

The batch is split evenly over the learner devices; gradients, PopArt statistics and
metrics are averaged over the mesh axis. In a multi-process run (jax.distributed) the mesh
spans every process's devices, so the same average runs across hosts and the parameters
stay identical everywhere.

A multi-process run also ends as one: a process that fails or stops responding ends every
process within seconds, each naming the process at fault (`PeerWatch`), where the others
would otherwise wait in a collective or a barrier for a peer that is gone.
"""

import atexit
import contextlib
import logging
import os
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
from jax._src import distributed as jax_distributed  # its key-value store, as orbax reaches it
from jax.experimental import multihost_utils
from jax.sharding import NamedSharding, PartitionSpec

from gtrxl_jax.config import ConfigError, DistributedConfig, LearnerConfig
from gtrxl_jax.train.learning import LearnerState, Learning
from gtrxl_jax.train.types import Trajectory, batch_major, rebuild, time_major

logger = logging.getLogger(__name__)

DATA_AXIS = "data"  # the mesh axis that splits a batch's rows (and environments) over devices

# jax.distributed's own heartbeat (its default is 100 s): when a process has been silent this
# long, the coordination service aborts every process (SIGABRT, naming the silent task). The
# backstop behind PeerWatch, which names the process sooner and exits with code 1. Clients
# beat at a fraction of it, so the service may see a death up to half of it early: at 20 s
# it aborted a survivor in CI before PeerWatch's ~13 s; at 40 s it cannot be first.
HEARTBEAT_TIMEOUT_S = 40
PEER_TIMEOUT_S = 10.0  # a peer whose heartbeat has not moved for this long has stopped
PEER_BEAT_S = 1.0  # how often each process beats and reads the others' heartbeats
_PEER_KEYS = "gtrxl_jax/peers/"  # PeerWatch's keys in jax.distributed's key-value store

_peer_watch = None  # this process's PeerWatch in a multi-process run, as jax.distributed's state


def initialize_distributed(config: DistributedConfig) -> None:
    """Join a multi-process run with jax.distributed (nothing for a single process).

    Must run before anything touches a JAX device. Afterwards `jax.devices()` lists every
    process's devices, so a mesh over them averages across hosts, and a `PeerWatch` ends
    this process when another one fails or stops responding.
    """
    global _peer_watch
    if config.num_processes == 1:
        return
    logger.info("Joining %d processes at %s as process %d", config.num_processes,
                config.coordinator_address, config.process_id)
    jax.distributed.initialize(coordinator_address=config.coordinator_address,
                               num_processes=config.num_processes,
                               process_id=config.process_id,
                               heartbeat_timeout_seconds=HEARTBEAT_TIMEOUT_S)
    _peer_watch = PeerWatch(jax_distributed.global_state.client, config.process_id,
                            config.num_processes).start()
    # Registered after jax's own exit handler, so it runs first: the watch stops before
    # jax.distributed's shutdown waits for every process at a barrier.
    atexit.register(_peer_watch.stop)


@contextlib.contextmanager
def failures_end_every_process() -> Iterator[None]:
    """In a multi-process run, an error inside ends every process (nothing otherwise).

    The error is published to the other processes, whose `PeerWatch` ends them naming this
    one; this process then logs it and ends (`PeerWatch.fail`) instead of raising it. Raised,
    the error would lead to jax.distributed's shutdown, which waits at a barrier for every
    process (5 minutes), as the others wait in a collective this process never joins.
    """
    try:
        yield
    except BaseException as error:
        if _peer_watch is None:
            raise
        _peer_watch.fail(error)


class PeerWatch:
    """Ends this process when another process of the run fails or stops responding.

    Every `beat_s` each process advances its heartbeat (a counter in jax.distributed's
    key-value store) and reads the others'. A peer whose heartbeat has not moved for
    `timeout_s`, or that published its failure (`fail`), ends this process with exit code 1
    and a message naming the peer ("process 1 of 2 stopped responding"). Only ending the
    process is sure to work: its main thread may be held in a collective that waits for
    the dead peer forever (NCCL) or in a barrier. A process that ends normally says so
    first (`stop`) and is no longer watched.

    Process 0 hosts the coordination service. When it dies, jax.distributed aborts the
    others at once itself ("the leader task was preempted/died"), before any heartbeat
    could time out; when it ends on its own, it goes last, so that the others read why.
    """

    def __init__(self, client: Any, process_id: int, num_processes: int, *,
                 timeout_s: float = PEER_TIMEOUT_S, beat_s: float = PEER_BEAT_S):
        """Watch the other processes (call `start`).

        Args:
          client: jax.distributed's client (`jax._src.distributed.global_state.client`).
          process_id: this process's index in [0, num_processes).
          num_processes: how many processes the run has.
          timeout_s: how long a peer's heartbeat may stand still.
          beat_s: how often to beat and read the others' heartbeats.
        """
        self._client, self._id, self._count = client, process_id, num_processes
        self._timeout_s, self._beat_s = timeout_s, beat_s
        self._lock = threading.Lock()
        # peer -> (heartbeat, when first seen, the read before it: the beat was written later)
        self._moved: dict[int, tuple[str | None, float, float]] = {}
        self._last_read = float("-inf")  # when the watch last read the heartbeats
        self._ending = False  # a thread has decided to end the process
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="peer-watch", daemon=True)

    def start(self) -> "PeerWatch":
        """Start beating and watching (a daemon thread)."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Tell the others that this process ended normally, and stop (idempotent)."""
        if self._stop.is_set():
            return
        with contextlib.suppress(jax.errors.JaxRuntimeError):
            self._client.key_value_set(f"{_PEER_KEYS}done/{self._id}", "", allow_overwrite=True)
        self._stop.set()
        self._thread.join()

    def fail(self, error: BaseException) -> NoReturn:
        """Publish this process's error to the others, log it, and end this process.

        Exit code 2 for a ConfigError, 130 for an interrupt, else 1 (as `gtrxl-train`'s).
        """
        self._wait_for_peers()
        if not self._claim_end():
            threading.Event().wait()  # the watch has named a failed peer and ends the process
        with contextlib.suppress(jax.errors.JaxRuntimeError):  # no coordinator: all end anyway
            self._client.key_value_set(f"{_PEER_KEYS}failed/{self._id}",
                                       f"{type(error).__name__}: {error}", allow_overwrite=True)
        logger.error("Process %d of %d failed; ending every process.", self._id, self._count,
                     exc_info=error)
        time.sleep(2 * self._beat_s)  # every peer reads the failure before this process goes
        self._exit(2 if isinstance(error, ConfigError)
                   else 130 if isinstance(error, KeyboardInterrupt) else 1)

    def _wait_for_peers(self) -> None:
        """Wait until every watched peer has beaten since now (at most `timeout_s` + 2 beats).

        An error that a peer's death caused here (a collective that lost it) then ends this
        process through the watch, naming that peer, not as this process's own failure. A
        beat counts only if it was written since now (after the read before the one that
        saw it): a dead peer's last beat, read only after the error, does not.
        """
        since = time.monotonic()
        while time.monotonic() < since + self._timeout_s + 2 * self._beat_s:
            with self._lock:
                if all(written_after > since for *_, written_after in self._moved.values()):
                    return
            time.sleep(self._beat_s / 4)

    def _watch(self) -> None:
        beat = 0
        while not self._stop.wait(self._beat_s if beat else 0):
            beat += 1
            try:
                self._client.key_value_set(f"{_PEER_KEYS}beat/{self._id}", str(beat),
                                           allow_overwrite=True)
                entries = dict(self._client.key_value_dir_get(_PEER_KEYS))
            except jax.errors.JaxRuntimeError as error:
                if not self._stop.is_set() and self._claim_end():
                    self._end(f"process 0 of {self._count}, the coordinator, stopped "
                              f"responding ({str(error).splitlines()[0]})")
                return
            reason = self._verdict(entries, time.monotonic())
            if reason and self._claim_end():
                self._end(reason)

    def _verdict(self, entries: dict[str, str], now: float) -> str | None:
        """Why this process must end, if it must: a peer's failure or its silence."""
        with self._lock:
            for peer in range(self._count):
                if peer == self._id or f"{_PEER_KEYS}done/{peer}" in entries:
                    self._moved.pop(peer, None)
                    continue
                failure = entries.get(f"{_PEER_KEYS}failed/{peer}")
                if failure is not None:
                    return f"process {peer} of {self._count} failed ({failure})"
                beat = entries.get(f"{_PEER_KEYS}beat/{peer}")
                if peer not in self._moved or self._moved[peer][0] != beat:
                    self._moved[peer] = (beat, now, self._last_read)
                elif now - self._moved[peer][1] > self._timeout_s:
                    return (f"process {peer} of {self._count} stopped responding (no heartbeat "
                            f"for {now - self._moved[peer][1]:.0f} s)")
            self._last_read = now
        return None

    def _claim_end(self) -> bool:
        """Whether this thread is the first to end the process (the others leave it be)."""
        with self._lock:
            claimed, self._ending = not self._ending, True
        return claimed

    def _end(self, reason: str) -> NoReturn:
        logger.error("%s; ending process %d too.", reason, self._id)
        self._exit(1)

    def _exit(self, code: int) -> NoReturn:
        if self._id == 0:
            time.sleep(2 * self._beat_s)  # the coordinator goes last (see the class docstring)
        for handler in logging.getLogger().handlers:
            handler.flush()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _pick(indices: tuple[int, ...], key: str) -> list:
    local = jax.local_devices()
    bad = [i for i in indices if not 0 <= i < len(local)]
    if bad or not indices:
        raise ConfigError(f"{key}={indices} must be indices into the {len(local)} local devices "
                          f"(0..{len(local) - 1}).")
    return [local[i] for i in indices]


def actors_get_a_device() -> bool:
    """Whether, by default, actors act on a device the learner does not use.

    So on several accelerators per process (as cleanba does: the device that acts would
    otherwise straggle in every gradient reduction); not on one accelerator, where they
    share it, nor on CPU devices, which share the same cores anyway.
    """
    local = jax.local_devices()
    return len(local) > 1 and local[0].platform != "cpu"


def learner_devices(config: LearnerConfig, with_actors: bool = False) -> list:
    """The devices the learner's mesh spans, over all processes.

    `learner.learner_devices` indexes each process's local devices; the result lists the
    chosen devices of every process, in the same order on every process (as a mesh requires
    in a multi-process run). Unset: every device, except, in a run with actors
    (`with_actors`) where `actors_get_a_device`, each process's first, the actors'.
    """
    by_process: dict[int, list] = {}
    for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(device.process_index, []).append(device)
    if config.learner_devices is None:
        actors_apart = with_actors and config.actor_devices is None and actors_get_a_device()
        first = 1 if actors_apart else 0
        return [device for process in sorted(by_process)
                for device in by_process[process][first:]]
    _pick(config.learner_devices, "learner.learner_devices")  # checks the indices
    return [by_process[process][i] for process in sorted(by_process)
            for i in config.learner_devices]


def actor_devices(config: LearnerConfig) -> list:
    """The local devices the actors' policy runs on (default: the first local device)."""
    if config.actor_devices is None:
        return [jax.local_devices()[0]]
    return _pick(config.actor_devices, "learner.actor_devices")


def make_mesh(devices: list) -> jax.sharding.Mesh:
    """A one-axis mesh (DATA_AXIS) over the given devices, in order."""
    return jax.sharding.Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """A copy on every device of the mesh (parameters, optimiser state)."""
    return NamedSharding(mesh, PartitionSpec())


def by_rows(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Axis 0 split evenly over the mesh's devices (environments and their states)."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def to_host(tree: Any) -> Any:
    """A pytree of (possibly multi-process) arrays as whole host arrays, on every process.

    In a multi-process run an array split over every process's devices (the on-device
    loop's environments) is gathered from all of them: a collective, so every process
    must call it at the same point.
    """
    if jax.process_count() == 1:
        return jax.device_get(tree)
    return multihost_utils.process_allgather(tree, tiled=True)


def any_process(flags: list[bool]) -> list[bool]:
    """Each flag or-ed over every process of the run, so that every process reads the same.

    A collective in a multi-process run (every process must call it at the same point);
    the flags as given in a single process.
    """
    if jax.process_count() == 1:
        return flags
    gathered = multihost_utils.process_allgather(np.asarray(flags))  # [processes, flags]
    return [bool(flag) for flag in np.any(gathered, axis=0)]


def first_replica(tree: Any) -> Any:
    """The first local copy of a replicated pytree, in buffers of its own.

    A copy, so that a later update that donates the replicated tree cannot delete it.
    """
    return jax.tree.map(lambda x: jnp.copy(x.addressable_data(0)), tree)


def batch_specs(batch: Trajectory) -> Trajectory:
    """How a batch splits over DATA_AXIS: time-major leaves on axis 1, batch-major on 0."""
    return rebuild(jax.tree.map(lambda _: PartitionSpec(None, DATA_AXIS), time_major(batch)),
                   jax.tree.map(lambda _: PartitionSpec(DATA_AXIS), batch_major(batch)))


class Learner:
    """The learner's update, data-parallel over a mesh of devices (jit over a shard_map).

    `shard_map` keeps pmap's programming model, per-device code with named-axis collectives
    (the update's pmean over DATA_AXIS), inside one jitted program over a `Mesh`, which is
    how JAX now shards, and the same mesh spans every process's devices in a multi-host run.
    The batch's rows split evenly over the devices; the state is replicated on all of them.
    """

    def __init__(self, learning: Learning, devices: list, *, trajectory_len: int):
        """Place the update on devices (compiled on first use).

        Args:
          learning: the pure update.
          devices: the learner devices of every process, the same list on each process (see
            `learner_devices`); each process splits its batch evenly over its own.
          trajectory_len: T, the V-trace horizon; batches hold T+1 steps.
        """
        self.learning = learning
        self.devices = list(devices)
        self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
        self.mesh = make_mesh(self.devices)
        self._T = trajectory_len
        self._update = None  # compiled for the batch's structure on first use

    @property
    def num_devices(self) -> int:
        """D, the number of this process's learner devices."""
        return len(self.local_devices)

    def init_state(self, key: jax.Array) -> LearnerState:
        """Fresh parameters, optimiser state and PopArt statistics (one copy, on the host)."""
        return jax.device_get(jax.jit(self.learning.init_state)(key))

    def replicate(self, state: LearnerState) -> LearnerState:
        """The state (host arrays) with a copy on every learner device, for `update`."""
        return jax.device_put(state, replicated(self.mesh))

    def unreplicate(self, state: LearnerState) -> LearnerState:
        """The state's first local copy, as host numpy arrays."""
        return jax.device_get(jax.tree.map(lambda x: x.addressable_data(0), state))

    def update(self, state: LearnerState, batch: Trajectory) -> tuple[LearnerState, dict]:
        """One learner update on a batch of trajectories; donates `state`.

        Args:
          state: the replicated state (from `replicate` or a previous update).
          batch: this process's trajectories [T+1, B_local] (host arrays, the core state
            possibly on an actor's device), B_local a multiple of the number of this
            process's learner devices.

        Returns:
          The new replicated state and the metrics (replicated scalars; see
          `Learning.update`).
        """
        if batch.length != self._T:
            raise ValueError(f"The learner takes trajectories of {self._T} transitions, got "
                             f"{batch.length}.")
        if batch.batch_size % self.num_devices:
            raise ValueError(f"A batch of {batch.batch_size} rows cannot be split evenly over "
                             f"{self.num_devices} learner devices.")
        specs = batch_specs(batch)
        return self._jitted(specs)(state, self._place(batch, specs))

    def lower(self, state: LearnerState, batch: Trajectory) -> jax.stages.Lowered:
        """The update lowered for this state and batch: its HLO, for profiles and costs."""
        specs = batch_specs(batch)
        return self._jitted(specs).lower(state, self._place(batch, specs))

    def _jitted(self, specs: Trajectory):
        """The jitted, sharded update (made for the batch's structure on first use)."""
        if self._update is None:
            sharded = jax.shard_map(
                lambda s, b: self.learning.update(s, b, DATA_AXIS), mesh=self.mesh,
                in_specs=(PartitionSpec(), specs), out_specs=PartitionSpec(), check_vma=False)
            self._update = jax.jit(sharded, donate_argnums=0)
        return self._update

    def _place(self, batch: Trajectory, specs: Trajectory) -> Trajectory:
        """Put this process's rows of a batch on the learner's devices, split by `specs`.

        Host leaves are copied in once; a leaf already on a device (an actor's core state)
        moves device to device, never through the host.
        """
        return jax.tree.map(
            lambda x, spec: jax.make_array_from_process_local_data(
                NamedSharding(self.mesh, spec), x if isinstance(x, jax.Array) else np.asarray(x)),
            batch, specs)
