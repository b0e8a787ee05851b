"""GTrXL on your own gymnasium environment: CueRecall from experiments/custom_env.py.

The environments come from a factory, "package.module:function" (`env.factory`), that
returns a `gymnasium.vector.VectorEnv`; env.options are its keyword arguments. Run from the
repository's root (the factory's module is imported from the working directory):

    python -m gtrxl_jax.train --config experiments/configs/custom_env.py
"""

from gtrxl_jax.config import (
    AgentConfig,
    EnvConfig,
    LearnerConfig,
    RunConfig,
    TrainConfig,
)
from gtrxl_jax.nn.config import GTrXLConfig


def get_config() -> TrainConfig:
    """CueRecall with a delay of 4 steps, 16 gymnasium environments."""
    return TrainConfig(
        env=EnvConfig(factory="experiments.custom_env:make", num_envs=16,
                      options={"delay": 4}),
        agent=AgentConfig(
            core="gtrxl",
            transformer=GTrXLConfig(num_layers=1, d_model=32, num_heads=2, memory_len=8),
        ),
        learner=LearnerConfig(trajectory_len=8, batch_size=16, total_env_steps=100_000),
        run=RunConfig(log_dir="runs/custom_env", log_interval_updates=50, eval_episodes=20),
    )
