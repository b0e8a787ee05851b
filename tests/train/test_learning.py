"""Learning: GTrXL solves the T-maze (recall a cue 9 steps later), which needs memory."""

import json
import time

import pytest

from gtrxl_jax.config import load_config
from gtrxl_jax.train.loop import train


@pytest.mark.slow
def test_gtrxl_learns_the_tmaze_well_above_chance(tmp_path):
    config = load_config(None, [
        "env.task=TMaze-L8", "env.num_envs=16",
        "learner.batch_size=32", "learner.trajectory_len=16", "learner.total_env_steps=250000",
        "agent.transformer.num_layers=1", "agent.transformer.d_model=32",
        "agent.transformer.num_heads=2", "agent.transformer.memory_len=16",
        "optimizer.learning_rate=1e-3",
        "run.eval_episodes=50", "run.progress=false", f"run.log_dir={tmp_path}",
    ])
    start = time.monotonic()
    result = train(config)
    assert time.monotonic() - start < 300
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["success"] < 0.7  # chance is 0.5: a reactive policy cannot do better
    assert records[-1]["success"] > 0.9
    assert result.eval["greedy"]["success"] > 0.9
