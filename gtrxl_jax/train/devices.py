"""Device placement: jax.distributed set-up, and which local devices learn and which act."""

import logging

import jax

from gtrxl_jax.config import ConfigError, DistributedConfig, LearnerConfig

logger = logging.getLogger(__name__)


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
