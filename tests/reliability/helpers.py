"""Runs, faulty environments and file checks shared by the reliability tests."""

import dataclasses
import json
import sys
import threading
from pathlib import Path

import numpy as np

from gtrxl_jax.envs import TMaze
from gtrxl_jax.train import builder
from tests.train.helpers import TINY_AGENT, tiny_config

STEPS_PER_UPDATE = 4 * 8  # tiny_config: 4 environments x 8 steps


def quick_config(log_dir, *overrides: str):
    """tiny_config without the evaluation: 4 updates, checkpoints at 2 and 4."""
    return tiny_config(log_dir, "run.eval_episodes=0", *overrides)


def train_command(log_dir, *overrides: str) -> list[str]:
    """`python -m gtrxl_jax.train` with tiny_config's settings (no evaluation)."""
    return [sys.executable, "-m", "gtrxl_jax.train", "env.task=TMaze-L3", "env.num_envs=4",
            "learner.batch_size=4", "learner.trajectory_len=8", *TINY_AGENT,
            "run.eval_episodes=0", "run.progress=false", "run.log_interval_updates=1",
            f"run.log_dir={log_dir}", *overrides]


def read_metrics(log_dir) -> list[dict]:
    """The records of a run's metrics.jsonl (every line must parse)."""
    return [json.loads(line) for line in (Path(log_dir) / "metrics.jsonl").read_text().splitlines()]


def checkpoint_updates(log_dir) -> list[int]:
    """The updates of the complete checkpoints in a run folder (orbax's finalised folders)."""
    folder = Path(log_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit())


def checkpoint_meta(log_dir, update: int) -> dict:
    """The meta dict (config, update, env_steps, wall_clock_s) of a complete checkpoint."""
    return json.loads((Path(log_dir) / "checkpoints" / str(update) / "meta" / "metadata")
                      .read_text())


def partial_checkpoints(log_dir) -> list[str]:
    """orbax's temporary (unfinished) checkpoint folders in a run folder."""
    return sorted(p.name for p in (Path(log_dir) / "checkpoints").glob("*.orbax-checkpoint-tmp*"))


class FaultyTMaze(TMaze):
    """A T-maze (corridor 3) that misbehaves from its `after`-th recv on.

    fault: "crash" raises OSError; "hang" blocks until `release` is set (at most 60 s);
    "nan_reward" reports NaN rewards.
    """

    def __init__(self, num_envs: int, seed: int, fault: str, after: int,
                 release: threading.Event | None = None):
        super().__init__(3, num_envs, seed=seed)
        self._fault, self._after, self._release = fault, after, release
        self._calls = 0

    def _recv(self):
        self._calls += 1
        if self._calls <= self._after:
            return super()._recv()
        if self._fault == "crash":
            raise OSError("environment crashed")
        if self._fault == "hang":
            self._release.wait(60.0)
            return super()._recv()
        raw = super()._recv()
        return dataclasses.replace(raw, reward=np.full_like(raw.reward, np.nan))


def use_faulty_envs(monkeypatch, **fault) -> None:
    """Make the training run's environments (its actor threads') FaultyTMaze(**fault)."""
    monkeypatch.setattr(builder, "make_env", lambda task, n, seed, training, **options:
                        FaultyTMaze(n, seed, **fault))
