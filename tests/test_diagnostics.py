"""The stability sweep (experiments/diagnostics/stability_sweep.py): seeds one after another
or together in one program, each a record of its curve, stability figures and evaluation."""

import json
import subprocess
import sys

from tests.environment import REPO, child_env

SWEEP = REPO / "experiments" / "diagnostics" / "stability_sweep.py"
TINY = ["env.task=TMaze-L3", "env.num_envs=4", "learner.batch_size=4",
        "learner.trajectory_len=8", "agent.transformer.num_layers=1",
        "agent.transformer.d_model=16", "agent.transformer.num_heads=2",
        "agent.transformer.memory_len=8"]


def sweep(tmp_path, *options: str, after: tuple[str, ...] = ()) -> list[dict]:
    """The sweep's records, with `options` before the overrides and `after` them."""
    out = tmp_path / "sweep.jsonl"
    result = subprocess.run(
        [sys.executable, str(SWEEP), "--steps", "320", "--interval", "2", "--eval-episodes",
         "4", "--out", str(out), *options, *TINY, *after],
        capture_output=True, text=True, cwd=REPO, env=child_env(), timeout=600)
    assert result.returncode == 0, result.stderr
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_seeds_together_write_one_record_each(tmp_path):
    records = sweep(tmp_path, "--seeds", "0-1", after=("--together",))  # options may follow
    assert [r["seed"] for r in records] == [0, 1]
    for record in records:  # 320 steps = 10 updates of 4 x 8: 5 intervals of 2
        assert len(record["success"]) == len(record["grad_norm"]) == 5
        assert record["interval_env_steps"] == 64 and "stopped_at_env_steps" not in record
        assert 0 <= record["final_greedy_success"] <= 1
        assert 0 <= record["final_sampled_success"] <= 1
    assert records[0]["grad_norm"] != records[1]["grad_norm"]  # two runs, not one twice


def test_a_deadline_stops_the_sweep_and_says_where(tmp_path):
    [record] = sweep(tmp_path, "--seeds", "3", "--max-seconds", "1e-9")
    assert record["seed"] == 3 and record["stopped_at_env_steps"] == 32  # one update
    assert record["success"] == [] and record["final"] is None  # no whole interval ran
