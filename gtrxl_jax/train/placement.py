"""Where a run computes: jax.distributed, which devices learn and act, the data-parallel learner.

The only module that knows devices, hosts and replication. The learner's update itself is
`learning.Learning.update`, a pure function; here it runs data-parallel:

    learner = Learner(learning, devices)
    state = learner.replicate(learning.init_state(key))   # one copy per device
    state, metrics = learner.update(state, batch)          # batch [T+1, B_local], host arrays

The batch is split evenly over the local learner devices; gradients, PopArt statistics and
metrics are averaged over the pmap axis. In a multi-process run (jax.distributed) the pmap
axis spans every process's devices, so the same average runs across hosts and the
parameters stay identical everywhere.
"""

import logging
from typing import Any

import jax
import numpy as np

from gtrxl_jax.config import ConfigError, DistributedConfig, LearnerConfig
from gtrxl_jax.train.learning import LearnerState, Learning
from gtrxl_jax.train.types import Trajectory, batch_major, rebuild, time_major

logger = logging.getLogger(__name__)

AXIS = "learner_devices"
DATA_AXIS = "data"  # the mesh axis that splits environments (on device) over devices


def initialize_distributed(config: DistributedConfig) -> None:
    """Join a multi-process run with jax.distributed (nothing for a single process).

    Must run before anything touches a JAX device. Afterwards a pmap over the local devices
    spans every process's devices, so its collectives (pmean) average across hosts.
    """
    if config.num_processes == 1:
        return
    logger.info("Joining %d processes at %s as process %d", config.num_processes,
                config.coordinator_address, config.process_id)
    jax.distributed.initialize(coordinator_address=config.coordinator_address,
                               num_processes=config.num_processes,
                               process_id=config.process_id)


def _pick(indices: tuple[int, ...], key: str) -> list:
    local = jax.local_devices()
    bad = [i for i in indices if not 0 <= i < len(local)]
    if bad or not indices:
        raise ConfigError(f"{key}={indices} must be indices into the {len(local)} local devices "
                          f"(0..{len(local) - 1}).")
    return [local[i] for i in indices]


def learner_devices(config: LearnerConfig) -> list:
    """The devices the learner's pmap runs on, over all processes (default: all devices).

    `learner.learner_devices` indexes each process's local devices; the result lists the
    chosen devices of every process, in the same order on every process (as pmap requires
    in a multi-process run).
    """
    by_process: dict[int, list] = {}
    for device in sorted(jax.devices(), key=lambda d: (d.process_index, d.id)):
        by_process.setdefault(device.process_index, []).append(device)
    if config.learner_devices is None:
        return [device for process in sorted(by_process) for device in by_process[process]]
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


def replicated(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
    """A copy on every device of the mesh (parameters, optimiser state)."""
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())


def by_rows(mesh: jax.sharding.Mesh) -> jax.sharding.NamedSharding:
    """Axis 0 split evenly over the mesh's devices (environments and their states)."""
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(DATA_AXIS))


def split_for_devices(trajectory: Trajectory, num_devices: int) -> Trajectory:
    """Splits the batch into equal per-device parts, stacked on a new leading device axis.

    Args:
      trajectory: time-major leaves [T+1, B, ...], batch-major leaves [B, ...].
      num_devices: D, which must divide B.

    Returns:
      The same Trajectory with time-major leaves [D, T+1, B/D, ...] and batch-major leaves
      [D, B/D, ...], ready for a pmap over D devices. The leaves are NumPy views of the
      input's (no copy here: the pmap's transfer to the devices is the one copy).
    """
    B = trajectory.batch_size
    if B % num_devices:
        raise ValueError(f"A batch of {B} rows cannot be split evenly over {num_devices} "
                         "learner devices.")

    def split(axis):
        def split_leaf(x):
            x = np.asarray(x)
            shape = (*x.shape[:axis], num_devices, B // num_devices, *x.shape[axis + 1:])
            return np.moveaxis(x.reshape(shape), axis, 0)
        return split_leaf

    return rebuild(jax.tree.map(split(1), time_major(trajectory)),
                   jax.tree.map(split(0), batch_major(trajectory)))


def first_replica(tree: Any) -> Any:
    """The first local device's copy of a replicated pytree (fresh buffers, safe from donation)."""
    return jax.tree.map(lambda x: x.addressable_data(0)[0], tree)


class Learner:
    """The learner's update, data-parallel over a set of devices (a pmap)."""

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
        self._T = trajectory_len
        self._pmapped_update = jax.pmap(
            lambda state, batch: learning.update(state, batch, AXIS), axis_name=AXIS,
            devices=self.devices, donate_argnums=(0,))
        # Places host arrays exactly as the update's outputs are placed, so that the first
        # update and every later one see the same input layout (and compile only once).
        self._to_devices = jax.pmap(lambda tree: tree, axis_name=AXIS, devices=self.devices)

    @property
    def agent(self):
        """The agent the learner trains."""
        return self.learning.agent

    @property
    def num_devices(self) -> int:
        """D, the number of this process's learner devices."""
        return len(self.local_devices)

    def init_state(self, key: jax.Array) -> LearnerState:
        """Fresh parameters, optimiser state and PopArt statistics (one copy, on the host)."""
        return jax.device_get(jax.jit(self.learning.init_state)(key))

    def replicate(self, state: LearnerState) -> LearnerState:
        """One copy of the state per learner device (leading device axis), for `update`."""
        stacked = jax.tree.map(lambda x: np.stack([np.asarray(x)] * self.num_devices), state)
        return self._to_devices(stacked)

    def unreplicate(self, state: LearnerState) -> LearnerState:
        """The state of the first local device, as host numpy arrays."""
        return jax.device_get(first_replica(state))

    def update(self, state: LearnerState, batch: Trajectory) -> tuple[LearnerState, dict]:
        """One learner update on a batch of trajectories; donates `state`.

        Args:
          state: the replicated state (from `replicate` or a previous update).
          batch: this process's trajectories, host arrays [T+1, B_local] with B_local a
            multiple of the number of learner devices.

        Returns:
          The new replicated state and the metrics (device arrays [D], equal on every
          device; see `Learning.update`).
        """
        if batch.length != self._T:
            raise ValueError(f"The learner takes trajectories of {self._T} transitions, got "
                             f"{batch.length}.")
        return self._pmapped_update(state, split_for_devices(batch, self.num_devices))

    def nonfinite_gradients(self, state: LearnerState, batch: Trajectory) -> list[str]:
        """The parameters whose gradient on a batch is not finite (see `Learning`).

        Args:
          state: the replicated state (as `update` takes it).
          batch: the trajectories [T+1, B_local] whose update was skipped.
        """
        return self.learning.nonfinite_gradients(first_replica(state.params),
                                                 first_replica(state.popart), batch)
