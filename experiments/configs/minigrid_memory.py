"""A long MiniGrid Memory run that learns the task and keeps it: GTrXL on MiniGrid-MemoryS9.

xminigrid's MiniGrid-MemoryS9 (a 3x3 view) on the on-device path: the agent must turn back to
see the cue (a ball or a key) in the start room, walk the corridor and step next to the
matching object. The memory suite's model and settings (the auxiliary reconstruction loss,
without which no core learned the task; the recent-norm clip, which bounds the trigger of a
late collapse) with one change for runs long after solving: AMSGrad instead of Adam, whose
full-size steps once a solved run's gradients shrink let solved runs dip or collapse. The
budget is 3x the slowest time to 95% success measured at these settings, under twenty
minutes on a 2-core CPU; docs/stability.md has the measurements and the trade-off
(AMSGrad solves more slowly than Adam, so the memory suite's 5M-step runs keep Adam).

    python -m gtrxl_jax.train --config experiments/configs/minigrid_memory.py
"""

from gtrxl_jax.config import (
    AgentConfig,
    EnvConfig,
    LearnerConfig,
    LossConfig,
    OptimizerConfig,
    RunConfig,
    TrainConfig,
)
from gtrxl_jax.nn.config import GTrXLConfig


def get_config() -> TrainConfig:
    """The long MiniGrid-MemoryS9 experiment's configuration."""
    return TrainConfig(
        env=EnvConfig(task="MiniGrid-MemoryS9", num_envs=64),
        agent=AgentConfig(
            core="gtrxl",
            # memory 64: the walk from the cue to the objects fits with room to spare.
            transformer=GTrXLConfig(num_layers=2, d_model=64, num_heads=4, memory_len=64),
        ),
        loss=LossConfig(reconstruction_cost=1.0),
        optimizer=OptimizerConfig(name="amsgrad", learning_rate=1e-3, recent_norm_clip=3.0),
        learner=LearnerConfig(loop="on_device", actor_processes=False, trajectory_len=32,
                              batch_size=64, total_env_steps=25_000_000),
        run=RunConfig(log_dir="runs/minigrid_memory", log_interval_updates=10),
    )
