"""The command line: config errors exit with code 2 before any work; SIGINT stops cleanly."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from gtrxl_jax.train.cli import main
from tests.train.helpers import TINY_AGENT

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("override, message", [
    ("env.bogus=1", "Unknown config key 'env.bogus'"),
    ("learner.batch_size=many", "learner.batch_size must be an int"),
    ("learner.batch_size=48", "must be a multiple of env.num_envs"),
])
def test_config_errors_exit_with_code_2_and_a_message(override, message, capsys):
    assert main([override]) == 2
    assert message in capsys.readouterr().err


def test_an_unknown_config_file_exits_with_code_2(capsys):
    assert main(["--config", "experiments/configs/nope.py"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_the_experiment_configs_load():
    from gtrxl_jax.config import load_config
    from gtrxl_jax.train.loop import check_config

    for name in ("tmaze", "cartpole"):
        check_config(load_config(str(REPO / "experiments" / "configs" / f"{name}.py")))


def test_sigint_stops_the_run_with_a_final_checkpoint_within_seconds(tmp_path):
    command = [sys.executable, "-m", "gtrxl_jax.train", "env.task=TMaze-L3", "env.num_envs=4",
               "learner.batch_size=4", "learner.trajectory_len=8",
               "learner.total_env_steps=100000000", *TINY_AGENT, "run.progress=false",
               "run.log_interval_updates=1", "run.checkpoint_interval_updates=1000000",
               f"run.log_dir={tmp_path}"]
    process = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True,
                               env={**os.environ, "PYTHONPATH": str(REPO)})
    try:
        metrics = tmp_path / "metrics.jsonl"
        deadline = time.monotonic() + 180
        while not (metrics.exists() and metrics.read_text().count("\n") >= 3):
            assert process.poll() is None, process.communicate()[0][-3000:]
            assert time.monotonic() < deadline, "the run made no progress"
            time.sleep(0.2)
        process.send_signal(signal.SIGINT)
        sent = time.monotonic()
        output = process.communicate(timeout=60)[0]
        stopped_after = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130, output[-3000:]
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] and summary["eval"] == {}
    assert str(summary["updates"]) in {p.name for p in (tmp_path / "checkpoints").iterdir()}
