"""Small configs and batches shared by the training tests."""

import jax
import numpy as np

from gtrxl_jax.agent import Agent, AgentInput
from gtrxl_jax.config import TrainConfig, load_config
from gtrxl_jax.train.actor import strip_cache
from gtrxl_jax.train.types import Trajectory

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


def random_trajectory(agent: Agent, T: int, B: int, seed: int = 0) -> Trajectory:
    """A random batch [T+1, B] for a vector-observation agent (episode starts included)."""
    rng = np.random.default_rng(seed)
    (obs_dim,) = agent.observation_spec.shape
    A = agent.num_actions
    first = rng.random((T + 1, B)) < 0.2
    first[0] = True
    return Trajectory(
        inputs=AgentInput(
            observation=rng.normal(size=(T + 1, B, obs_dim)).astype(np.float32),
            first=first,
            prev_action=rng.integers(0, A, (T + 1, B)).astype(np.int32),
            prev_reward=rng.normal(size=(T + 1, B)).astype(np.float32),
        ),
        actions=rng.integers(0, A, (T + 1, B)).astype(np.int32),
        behaviour_logits=rng.normal(size=(T + 1, B, A)).astype(np.float32),
        discount=(rng.random((T + 1, B)) > 0.1).astype(np.float32),
        task_id=np.zeros(B, np.int32),
        core_state=jax.device_get(strip_cache(agent.initial_state(B))),
        param_version=np.zeros(B, np.int32),
    )
