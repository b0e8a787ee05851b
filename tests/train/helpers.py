"""Small training configs and user-like training runs shared by the tests (random batches:
gtrxl_jax.bench.learner)."""

import json
import subprocess
import sys
from pathlib import Path

from gtrxl_jax.config import TrainConfig, load_config
from tests.environment import REPO, user_env

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


def train_as_a_user(log_dir: Path, *args: str, timeout_s: float = 900) -> dict:
    """Run `python -m gtrxl_jax.train *args run.log_dir=log_dir` as a user would (XLA's
    default optimisation level, one CPU device: tests/environment.py); fail with its output
    if it fails.

    Returns:
      The run's summary.json.
    """
    completed = subprocess.run(
        [sys.executable, "-m", "gtrxl_jax.train", *args, "run.progress=false",
         f"run.log_dir={log_dir}"],
        cwd=REPO, env=user_env(), capture_output=True, text=True, timeout=timeout_s)
    assert completed.returncode == 0, (completed.stdout + completed.stderr)[-3000:]
    return json.loads((log_dir / "summary.json").read_text())
