"""The default experiment: GTrXL on the passive T-maze with a 16-step corridor.

The cue is shown only on the first step and must be recalled 17 steps later at the junction,
so success above 50% needs memory. A 32-step trajectory and a 32-step memory window hold a
whole 19-step episode. Finishes in a few minutes on a 2-core CPU.

    python -m gtrxl_jax.train --config experiments/configs/tmaze.py
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
    """The T-maze experiment's configuration."""
    return TrainConfig(
        env=EnvConfig(task="TMaze-L16", num_envs=32),
        agent=AgentConfig(
            core="gtrxl",
            transformer=GTrXLConfig(num_layers=2, d_model=64, num_heads=4, memory_len=32),
        ),
        loss=LossConfig(discount=0.99, entropy_cost=0.01),
        # 2e-4: at 5e-4 solved runs could collapse later (docs/stability.md).
        optimizer=OptimizerConfig(name="adam", learning_rate=2e-4),
        # The actor in a process of its own: 17% more env steps/s on a 2-core CPU
        # (docs/performance.md).
        learner=LearnerConfig(trajectory_len=32, batch_size=32, total_env_steps=500_000,
                              actor_processes=True),
        run=RunConfig(log_dir="runs/tmaze", log_interval_updates=10, eval_episodes=100),
    )
