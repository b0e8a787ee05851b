"""Learning on an envpool task: a short MiniGrid Memory run improves clearly over its start.

MiniGrid-MemoryS7 pays 1 - 0.9 steps / 245 for reaching the object that matches the cue in
the start room, 0 for the other one or for running out of steps. A random policy scores
about 0.14 (references.json); walking to the end of the hallway and guessing, with no
memory, about 0.5; a perfect agent 0.978. A short run is expected to get well above random,
not to solve the memory part.
"""

import json

import numpy as np
import pytest

from gtrxl_jax.suite.references import load_references
from tests.train.helpers import train_as_a_user

TASK = "MiniGrid-MemoryS7-v0"


@pytest.mark.slow
@pytest.mark.needs_envpool
def test_a_short_minigrid_memory_run_improves_clearly_over_its_start(tmp_path):
    random_return = load_references().for_task(TASK).random
    # ~2 min on an idle 2-core machine, twice that on a busy one
    summary = train_as_a_user(
        tmp_path, f"env.task={TASK}", "env.num_envs=16",
        "learner.batch_size=32", "learner.trajectory_len=32", "learner.total_env_steps=300000",
        "learner.actor_processes=true",  # envpool in an actor process; faster on 2 cores
        "agent.transformer.num_layers=1", "agent.transformer.d_model=32",
        "agent.transformer.num_heads=2", "agent.transformer.memory_len=32",
        "agent.torso_options.output_size=64",
        "optimizer.learning_rate=1e-3",
        "run.log_interval_updates=10", "run.eval_episodes=100")
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    returns = [r["episode_return"] for r in records]
    first, last = np.mean(returns[:3]), np.mean(returns[-5:])
    measured = (f"first {first:.3f}, last {last:.3f}, greedy eval "
                f"{summary['eval']['greedy']['episode_return']:.3f}, random {random_return:.3f}")
    assert first < random_return + 0.15, measured  # it starts near the random policy
    assert last > first + 0.2, measured
    assert summary["eval"]["greedy"]["episode_return"] > random_return + 0.15, measured
