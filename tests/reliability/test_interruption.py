"""Interruption: a run killed with SIGKILL at a random moment resumes from its last complete
checkpoint (a half-written one is never read, the last N are kept); SIGINT and SIGTERM stop
a run cleanly, with a final checkpoint, within seconds."""

import json
import random
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from gtrxl_jax.train import shutdown
from tests.environment import REPO
from tests.reliability.helpers import (
    STEPS_PER_UPDATE,
    checkpoint_meta,
    checkpoint_updates,
    partial_checkpoints,
    read_metrics,
    train_command,
)

KILL_SEED = 20261125  # seeds the moment of the kill, so a failure can be replayed
ENDLESS = "learner.total_env_steps=1000000000"
CHECKPOINTS = ["run.checkpoint_interval_updates=2", "run.keep_checkpoints=2"]
START_TIMEOUT_S = 240  # start-up, compiles included, on a loaded machine


def start(log_dir, env, *overrides: str) -> subprocess.Popen:
    return subprocess.Popen(train_command(log_dir, *overrides), cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_for(process: subprocess.Popen, ready, what: str) -> None:
    """Poll until ready() while the process lives; fail with its output otherwise."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while not ready():
        if process.poll() is not None:
            pytest.fail(f"the run ended before {what}:\n{process.communicate()[0][-3000:]}")
        if time.monotonic() > deadline:
            process.kill()
            output = process.communicate()[0][-3000:]
            pytest.fail(f"no {what} within {START_TIMEOUT_S} s:\n{output}")
        time.sleep(0.05)


def half_write(complete, partial) -> None:
    """Make `partial` look like orbax's folder of a save cut short: part of a checkpoint."""
    shutil.copytree(complete, partial)
    shutil.rmtree(partial / "meta")
    for path in (partial / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


@pytest.mark.slow
def test_a_run_killed_at_a_random_moment_resumes_from_its_last_complete_checkpoint(
        tmp_path, subprocess_env, record_property):
    log_dir = tmp_path / "run"
    delay = random.Random(KILL_SEED).uniform(0.0, 2.0)
    process = start(log_dir, subprocess_env, ENDLESS, *CHECKPOINTS)
    try:
        wait_for(process, lambda: checkpoint_updates(log_dir), "first checkpoint")
        time.sleep(delay)
        assert process.poll() is None, process.communicate()[0][-3000:]
        process.send_signal(signal.SIGKILL)
        process.wait(30)
    finally:
        process.kill()
    complete, partial = checkpoint_updates(log_dir), partial_checkpoints(log_dir)
    print(f"SIGKILL {delay:.3f} s after the first checkpoint (seed {KILL_SEED}); complete "
          f"checkpoints {complete}, partial ones {partial}")
    record_property("kill_delay_s", delay)
    # orbax finalises a save before it deletes the oldest checkpoint, so a kill between the
    # two leaves run.keep_checkpoints + 1 complete ones (seen: [6, 8, 10]); the resumed run
    # deletes the extra one (asserted below).
    assert 1 <= len(complete) <= 3, "keeps the last run.keep_checkpoints=2 (+1 mid-save)"
    last = complete[-1]
    # Besides any partial folder the kill left, one for the next save and one far ahead.
    folder = log_dir / "checkpoints"
    for update in (last + 2, 99_999):
        if not (folder / f"{update}.orbax-checkpoint-tmp").exists():
            half_write(folder / str(last), folder / f"{update}.orbax-checkpoint-tmp")

    trained_before = checkpoint_meta(log_dir, last)["wall_clock_s"]
    assert trained_before > 0
    total_updates = last + 4
    resumed = subprocess.run(
        train_command(log_dir, "run.resume=true", *CHECKPOINTS,
                      f"learner.total_env_steps={total_updates * STEPS_PER_UPDATE}"),
        cwd=REPO, env=subprocess_env, capture_output=True, text=True, timeout=START_TIMEOUT_S)
    output = resumed.stdout + resumed.stderr
    assert resumed.returncode == 0, output[-3000:]
    assert f"Resuming from update {last} ({last * STEPS_PER_UPDATE} env steps)" in output
    assert checkpoint_updates(log_dir) == [last + 2, last + 4]
    assert partial_checkpoints(log_dir) == []  # the leftovers were deleted
    # The records of updates after `last` that the killed run logged were dropped.
    assert [r["update"] for r in read_metrics(log_dir)] == list(range(1, total_updates + 1))
    summary = json.loads((log_dir / "summary.json").read_text())
    assert (summary["updates"], summary["interrupted"]) == (total_updates, False)
    # The training time of both sessions: the killed one's up to its checkpoint, then this.
    assert (summary["wall_clock_s"] >= checkpoint_meta(log_dir, total_updates)["wall_clock_s"]
            > trained_before)


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_stops_the_run_with_a_final_checkpoint_within_seconds(
        signum, tmp_path, subprocess_env):
    log_dir = tmp_path / "run"
    process = start(log_dir, subprocess_env, ENDLESS, "run.checkpoint_interval_updates=1000")
    try:
        wait_for(process, lambda: (log_dir / "metrics.jsonl").exists()
                 and (log_dir / "metrics.jsonl").read_text().count("\n") >= 3, "three updates")
        process.send_signal(signum)
        sent = time.monotonic()
        output = process.communicate(timeout=60)[0]
        stopped_after = time.monotonic() - sent
    finally:
        process.kill()
    assert process.returncode == 130, output[-3000:]
    assert stopped_after < 15, f"took {stopped_after:.1f} s to stop"
    assert f"{signal.Signals(signum).name} received: stopping the actors" in output
    assert "did not stop within" not in output, "an actor thread hung"
    summary = json.loads((log_dir / "summary.json").read_text())
    assert summary["interrupted"] and summary["eval"] == {}
    assert (f"stopped by a signal at update {summary['updates']}, after its checkpoint: "
            "continue the run with the same command and run.resume=true") in output
    assert checkpoint_updates(log_dir) == [summary["updates"]]
    assert [r["update"] for r in read_metrics(log_dir)][-1] == summary["updates"]


def test_an_interrupt_outside_the_training_loop_ends_with_one_line(subprocess_env):
    """A Ctrl-C while the run starts up (compiling) or evaluates at the end raises
    KeyboardInterrupt there: one line that says what was kept, exit 130, no traceback."""
    script = ("import sys; from gtrxl_jax.train import cli\n"
              "def interrupted(config): raise KeyboardInterrupt\n"
              "cli.train = interrupted\n"
              "sys.exit(cli.main(['run.log_dir=unused']))\n")
    process = subprocess.run([sys.executable, "-c", script], cwd=REPO, env=subprocess_env,
                             capture_output=True, text=True, timeout=120)
    assert process.returncode == 130
    assert process.stdout == ""
    assert process.stderr == (
        "gtrxl-train: stopped at once by a signal: nothing after the last checkpoint was "
        "saved; continue the run with the same command and run.resume=true (if it has a "
        "checkpoint yet).\n")


def test_a_sigint_repeated_within_a_second_is_one_signal_and_a_later_one_aborts(monkeypatch):
    """`timeout -s INT` sends SIGINT to the process and then to its group: the second copy
    must not abort the run's final checkpoint as a second Ctrl-C would."""
    clock = [100.0]
    monkeypatch.setattr(shutdown.time, "monotonic", lambda: clock[0])
    stop = threading.Event()
    with shutdown.stop_on_signals(stop) as signals:
        signal.raise_signal(signal.SIGINT)
        clock[0] += 0.5
        signal.raise_signal(signal.SIGINT)  # the same signal, delivered twice
        assert stop.is_set() and signals.signal == signal.SIGINT
        clock[0] += shutdown.REPEAT_WINDOW_S
        with pytest.raises(KeyboardInterrupt):
            signal.raise_signal(signal.SIGINT)  # a second press
