"""Named benchmark workloads: a core configuration with the unroll, batch and sweep to time.

`EndToEnd` holds what the end-to-end measurement runs besides the workload: which tasks and
cores, for how many environment steps, with which extra training overrides.
`OnDeviceComparison` holds what the on-device measurement runs: the main job's T-maze config
on both training paths, its budget, and the numbers of environments of its sweep.
"""

import dataclasses
from pathlib import Path

from gtrxl_jax.nn.config import GTrXLConfig


@dataclasses.dataclass(frozen=True)
class Workload:
    """What a benchmark run times.

    Attributes:
      name: the name the CLI selects it by.
      core: the GTrXL configuration (memory_len M is the reference memory).
      unroll: T, the learner's unroll length.
      batch: B, sequences per learner update and per acting step.
      memory_lens: the memory lengths M of the scaling sweep.
      square: side of the square matmul that measures the machine's ceiling.
      stream_bytes: size of the buffer that measures the machine's read bandwidth (larger
        than the CPU's caches, or it measures them).
    """

    name: str
    core: GTrXLConfig
    unroll: int
    batch: int
    memory_lens: tuple[int, ...]
    square: int
    stream_bytes: int

    def with_dtype(self, dtype: str) -> "Workload":
        """The same workload computing in `dtype` ("float32" or "bfloat16")."""
        return dataclasses.replace(self, core=dataclasses.replace(self.core, dtype=dtype))

    def with_memory(self, memory_len: int) -> "Workload":
        """The same workload with memory length M = memory_len."""
        return dataclasses.replace(self, core=dataclasses.replace(self.core, memory_len=memory_len))


@dataclasses.dataclass(frozen=True)
class EndToEnd:
    """The training runs of the end-to-end measurement (one per task and core).

    Attributes:
      tasks: task names for `gtrxl_jax.envs.make_env` (an Atari and a MiniGrid memory task).
      cores: agent.core values ("gtrxl", "feedforward", ...).
      env_steps: learner.total_env_steps of each run; it must cover more updates of
        unroll x batch steps than the session's warm-up.
      num_envs: env.num_envs per actor thread (None: the workload's batch, one trajectory
        per update); it must divide the batch.
      overrides: further TrainConfig overrides ("section.field=value"), applied last but
        for the settings the measurement needs (log_dir, a record per update, no eval).
    """

    tasks: tuple[str, ...] = ("Pong-v5", "MiniGrid-MemoryS7-v0")
    cores: tuple[str, ...] = ("gtrxl", "feedforward")
    env_steps: int = 20_480
    num_envs: int | None = None
    overrides: tuple[str, ...] = ()


# The repository's experiment configs (a checkout's; they are not part of the package).
EXPERIMENT_CONFIGS = Path(__file__).resolve().parents[2] / "experiments" / "configs"


@dataclasses.dataclass(frozen=True)
class OnDeviceComparison:
    """The runs of the on-device measurement: one task and model, both training paths.

    Attributes:
      actor_learner_config: the config file of the actor-learner run (the main job's).
      on_device_config: the same task, model and budget with learner.loop=on_device.
      env_steps: learner.total_env_steps of each time-to-solve run (None: the config's own,
        the main job's budget).
      num_envs: N of the on-device sweep (env.num_envs = learner.batch_size = N); empty
        for no sweep.
      overrides: further TrainConfig overrides for every run of the measurement, applied
        after its budget and before its own settings (logging, N of the sweep).
    """

    actor_learner_config: str = str(EXPERIMENT_CONFIGS / "tmaze.py")
    on_device_config: str = str(EXPERIMENT_CONFIGS / "tmaze_on_device.py")
    env_steps: int | None = None
    num_envs: tuple[int, ...] = (64, 256, 1024, 4096)
    overrides: tuple[str, ...] = ()


WORKLOADS = {
    # The shared CPU workload of the published GTrXL implementations (DESIGN.md).
    "reference": Workload(
        name="reference",
        core=GTrXLConfig(num_layers=4, d_model=256, num_heads=8, d_ff=1024, memory_len=64),
        unroll=32,
        batch=32,
        memory_lens=(32, 64, 128, 256, 512),
        square=2048,
        stream_bytes=512 * 2**20,
    ),
    # The paper's DMLab scale (12 layers, embedding 256, memory 512; a 512-wide attention of
    # 8 heads x 64), with IMPALA-style unroll 80 and batch 256: a GPU workload.
    "paper": Workload(
        name="paper",
        core=GTrXLConfig(
            num_layers=12, d_model=256, num_heads=8, head_dim=64, d_ff=1024, memory_len=512
        ),
        unroll=80,
        batch=256,
        memory_lens=(128, 256, 512, 1024),
        square=4096,
        stream_bytes=2 * 2**30,
    ),
    # A seconds-long smoke test of the harness itself.
    "tiny": Workload(
        name="tiny",
        core=GTrXLConfig(num_layers=2, d_model=16, num_heads=2, d_ff=32, memory_len=4),
        unroll=4,
        batch=2,
        memory_lens=(2, 4),
        square=64,
        stream_bytes=2**20,
    ),
}
