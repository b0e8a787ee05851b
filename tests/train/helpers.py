"""Small training configs shared by the tests (random batches: gtrxl_jax.bench.learner)."""

from gtrxl_jax.config import TrainConfig, load_config

TINY_AGENT = [
    "agent.transformer.num_layers=1",
    "agent.transformer.d_model=16",
    "agent.transformer.num_heads=2",
    "agent.transformer.memory_len=8",
]


def tiny_config(log_dir, *overrides: str) -> TrainConfig:
    """A few-update T-maze run with a one-layer GTrXL, writing to log_dir."""
    return load_config(None, [
        "env.task=TMaze-L3",
        "env.num_envs=4",
        "learner.batch_size=4",
        "learner.trajectory_len=8",
        "learner.total_env_steps=128",  # 4 updates
        *TINY_AGENT,
        "run.eval_episodes=4",
        "run.progress=false",
        "run.log_interval_updates=1",
        "run.checkpoint_interval_updates=2",
        f"run.log_dir={log_dir}",
        *overrides,
    ])
