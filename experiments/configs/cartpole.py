"""GTrXL on envpool's CartPole-v1: a quick check that the loop learns a classic-control task.

The return is the episode length, at most 500. PopArt keeps the value loss on a fixed scale
while returns grow from ~20 to hundreds; without it the run is unstable.

    python -m gtrxl_jax.train --config experiments/configs/cartpole.py
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
    """The CartPole experiment's configuration."""
    return TrainConfig(
        env=EnvConfig(task="CartPole-v1", num_envs=32),
        agent=AgentConfig(
            core="gtrxl",
            transformer=GTrXLConfig(num_layers=2, d_model=64, num_heads=4, memory_len=16),
        ),
        loss=LossConfig(discount=0.99, entropy_cost=0.01, popart=True),
        optimizer=OptimizerConfig(name="adam", learning_rate=5e-4),
        learner=LearnerConfig(trajectory_len=32, batch_size=32, total_env_steps=500_000),
        run=RunConfig(log_dir="runs/cartpole", log_interval_updates=10, eval_episodes=20),
    )
