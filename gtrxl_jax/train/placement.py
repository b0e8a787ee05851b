"""Where a run computes: jax.distributed, which devices learn and act, the data-parallel learner.

The only module that knows devices, hosts and replication. The learner's update itself is
`learning.Learning.update`, a pure function; here it runs data-parallel:

    learner = Learner(learning, devices)
    state = learner.replicate(learning.init_state(key))   # one copy per device
    state, metrics = learner.update(state, batch)          # batch [T+1, B_local], host arrays

The batch is split evenly over the learner devices; gradients, PopArt statistics and
metrics are averaged over the mesh axis. In a multi-process run (jax.distributed) the mesh
spans every process's devices, so the same average runs across hosts and the parameters
stay identical everywhere.
"""

import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import NamedSharding, PartitionSpec

from gtrxl_jax.config import ConfigError, DistributedConfig, LearnerConfig
from gtrxl_jax.train.learning import LearnerState, Learning
from gtrxl_jax.train.types import Trajectory, batch_major, rebuild, time_major

logger = logging.getLogger(__name__)

DATA_AXIS = "data"  # the mesh axis that splits a batch's rows (and environments) over devices


def initialize_distributed(config: DistributedConfig) -> None:
    """Join a multi-process run with jax.distributed (nothing for a single process).

    Must run before anything touches a JAX device. Afterwards `jax.devices()` lists every
    process's devices, so a mesh over them averages across hosts.
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
    """The devices the learner's mesh spans, over all processes (default: all devices).

    `learner.learner_devices` indexes each process's local devices; the result lists the
    chosen devices of every process, in the same order on every process (as a mesh requires
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


def replicated(mesh: jax.sharding.Mesh) -> NamedSharding:
    """A copy on every device of the mesh (parameters, optimiser state)."""
    return NamedSharding(mesh, PartitionSpec())


def by_rows(mesh: jax.sharding.Mesh) -> NamedSharding:
    """Axis 0 split evenly over the mesh's devices (environments and their states)."""
    return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


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
        """The state (host arrays) with a copy on every learner device, for `update`."""
        return jax.device_put(state, replicated(self.mesh))

    def unreplicate(self, state: LearnerState) -> LearnerState:
        """The state's first local copy, as host numpy arrays."""
        return jax.device_get(jax.tree.map(lambda x: x.addressable_data(0), state))

    def update(self, state: LearnerState, batch: Trajectory) -> tuple[LearnerState, dict]:
        """One learner update on a batch of trajectories; donates `state`.

        Args:
          state: the replicated state (from `replicate` or a previous update).
          batch: this process's trajectories, host arrays [T+1, B_local] with B_local a
            multiple of the number of this process's learner devices.

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
        if self._update is None:
            sharded = jax.shard_map(
                lambda s, b: self.learning.update(s, b, DATA_AXIS), mesh=self.mesh,
                in_specs=(PartitionSpec(), specs), out_specs=PartitionSpec(), check_vma=False)
            self._update = jax.jit(sharded, donate_argnums=0)
        placed = jax.tree.map(
            lambda x, spec: jax.make_array_from_process_local_data(
                NamedSharding(self.mesh, spec), np.asarray(x)), batch, specs)
        return self._update(state, placed)

    def nonfinite_gradients(self, state: LearnerState, batch: Trajectory) -> list[str]:
        """The parameters whose gradient on a batch is not finite (see `Learning`).

        Args:
          state: the replicated state (as `update` takes it).
          batch: the trajectories [T+1, B_local] whose update was skipped.
        """
        return self.learning.nonfinite_gradients(first_replica(state.params),
                                                 first_replica(state.popart), batch)
