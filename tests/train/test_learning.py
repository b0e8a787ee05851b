"""Learning: GTrXL solves the T-maze (recall a cue 21 steps later), which needs memory."""

import json
import time

import pytest

from tests.train.helpers import train_as_a_user


def _memory_run(tmp_path, core) -> dict:
    """TMaze-L20: the cue is recalled 21 steps later, beyond one 16-step trajectory and
    its two 8-step segments, so the memory must cross segment and trajectory boundaries.
    The main job's config otherwise (its actor in a process of its own)."""
    return train_as_a_user(
        tmp_path / core, "--config", "experiments/configs/tmaze.py",
        "env.task=TMaze-L20", "learner.trajectory_len=16", "learner.segment_len=8",
        "agent.transformer.memory_len=24", "learner.total_env_steps=250000",
        # The budget this test was built for: 5e-4 decayed to 0 (the default, a constant
        # 2e-4, is the stability test's below).
        "optimizer.learning_rate=5e-4", "optimizer.schedule=linear", f"agent.core={core}",
        "run.eval_episodes=100")


@pytest.mark.slow
def test_memory_crosses_segments_and_trajectories_and_feedforward_stays_at_chance(tmp_path):
    start = time.monotonic()
    gtrxl = _memory_run(tmp_path, "gtrxl")
    feedforward = _memory_run(tmp_path, "feedforward")
    assert time.monotonic() - start < 600
    first_record = json.loads((tmp_path / "gtrxl" / "metrics.jsonl").read_text().splitlines()[0])
    assert first_record["success"] < 0.7  # chance is 0.5: it starts as a reactive policy
    assert gtrxl["eval"]["greedy"]["success"] >= 0.95, gtrxl["eval"]
    assert feedforward["eval"]["greedy"]["success"] <= 0.65, feedforward["eval"]
    assert feedforward["eval"]["sampled"]["success"] <= 0.65, feedforward["eval"]


def _assert_solved_and_held(tmp_path, env_steps: int, *overrides: str) -> None:
    """TMaze-L20 on device for `env_steps` (the main job's model and defaults, constant
    learning rate): the run must reach 95% success, never fall below 90% in any later logged
    interval, last at least 3x as long as solving took, and end >= 95% greedy."""
    start = time.monotonic()
    summary = train_as_a_user(
        tmp_path, "--config", "experiments/configs/tmaze_on_device.py",
        "env.task=TMaze-L20", "learner.trajectory_len=16", "learner.segment_len=8",
        "agent.transformer.memory_len=24", f"learner.total_env_steps={env_steps}",
        "run.log_interval_updates=10", "run.eval_episodes=200", *overrides)
    assert time.monotonic() - start < 600
    records = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    curve = [(r["env_steps"], r["success"]) for r in records]
    solved = next((i for i, (_, success) in enumerate(curve) if success >= 0.95), None)
    assert solved is not None, curve
    later = [(steps, success) for steps, success in curve[solved:] if success < 0.90]
    assert not later, f"solved at {curve[solved][0]} env steps, then fell to {later[:5]}"
    assert curve[-1][0] >= 3 * curve[solved][0], curve[solved]
    assert summary["eval"]["greedy"]["success"] >= 0.95, summary["eval"]


@pytest.mark.slow
def test_a_solved_tmaze_beyond_one_trajectory_stays_solved_with_a_constant_learning_rate(
        tmp_path):
    """The late collapse, guarded: TMaze-L20's cue lies 21 steps before the junction, never
    in the junction's 16-step trajectory. Seed 5 holds at the default 2e-4 (solved at 200k,
    lowest success after 0.94) and collapses at the former 5e-4 (solved at 138k, at chance
    from 261k): docs/stability.md. 750k steps leave room for solving as late as 250k."""
    _assert_solved_and_held(tmp_path, 750_000, "run.seed=5")


@pytest.mark.slow
def test_the_reconstruction_loss_holds_a_solved_tmaze_at_the_rate_that_collapsed(tmp_path):
    """The collapse's root, guarded: nothing trained the cue's representation once the cue
    lay beyond the gradient window. With the auxiliary reconstruction loss, seed 5 holds at
    5e-4 (solved at 122k, lowest success after 0.96), where without it the run is at chance
    from 261k, inside this budget (docs/stability.md)."""
    _assert_solved_and_held(tmp_path, 500_000, "run.seed=5", "optimizer.learning_rate=5e-4",
                            "loss.reconstruction_cost=1.0")
