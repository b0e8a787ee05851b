"""A long MiniGrid Memory run that learns the task and keeps it: GTrXL on MiniGrid-MemoryS9.

xminigrid's MiniGrid-MemoryS9 (a 3x3 view) on the on-device path: the agent must turn back to
see the cue (a ball or a key) in the start room, walk the corridor and step next to the
matching object. The memory suite's model (with the auxiliary reconstruction loss, without
which no core learned the task, and the recent-norm clip, which bounds the trigger of a late
collapse), trained with PPO on advantages in return units and AMSGrad: PPO's epochs learn
the task in a fraction of V-trace's steps; unstandardised advantages and AMSGrad both let
the policy's steps shrink once the task is solved, where standardised advantages and Adam
kept them full-size and let solved runs dip. The budget is over 3x the slowest time to 95%
success measured at these settings, under fifteen minutes on a 2-core CPU; docs/stability.md
("PPO on MiniGrid Memory") has the measurements.

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
        loss=LossConfig(name="ppo", ppo_normalise_advantages=False, reconstruction_cost=1.0),
        optimizer=OptimizerConfig(name="amsgrad", learning_rate=6e-4, recent_norm_clip=3.0),
        learner=LearnerConfig(loop="on_device", actor_processes=False, trajectory_len=32,
                              batch_size=64, total_env_steps=8_000_000),
        run=RunConfig(log_dir="runs/minigrid_memory", log_interval_updates=10),
    )
