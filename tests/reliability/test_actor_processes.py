"""Actors in processes of their own (learner.actor_processes): the same run as with threads,
and a child's failure (a stall inside it, or its death) ends the run with a clear error and
a final checkpoint."""

import dataclasses
import multiprocessing
import os
import pickle
import signal
import threading
import time

import jax
import numpy as np
import pytest

from gtrxl_jax.train import builder, loop
from gtrxl_jax.train.actor_process import (
    ActorProcessError,
    PickledParams,
    PipeSender,
    receive_params,
)
from gtrxl_jax.train.handoff import ParamsStore, Stalled, Stopped
from gtrxl_jax.train.placement import Learner
from tests.reliability.helpers import checkpoint_updates, quick_config, read_metrics
from tests.reliability.test_reproducibility import assert_equal_trees

PROCESSES = "learner.actor_processes=true"
LONG_RUN = "learner.total_env_steps=100000"


def learning(log_dir) -> list[tuple]:
    return [(r["loss"], r["grad_norm"], r["entropy"], r["episode_return"])
            for r in read_metrics(log_dir)]


def test_actor_processes_make_the_same_reproducible_run_as_threads(finished_run, tmp_path):
    if jax.default_backend() != "cpu":
        pytest.skip("actor processes act on the CPU, threads on the accelerator: their runs "
                    "agree bit for bit only where both act on the CPU")
    log_dir, by_threads = finished_run
    by_processes = loop.train(quick_config(tmp_path, PROCESSES))
    assert learning(tmp_path) == learning(log_dir)
    assert_equal_trees(by_processes.params, by_threads.params)
    # the child's stats come with each trajectory and 4 times a second
    assert max(r["actor_sps"] for r in read_metrics(tmp_path)) > 0
    assert multiprocessing.active_children() == []


def test_free_running_actor_processes_train(tmp_path):
    """Without the fixed policy lag an actor acts with the newest parameters it has; in its
    own process it may ask before the first version has come down the pipe, and waits."""
    result = loop.train(quick_config(tmp_path, PROCESSES, "learner.reproducible=false"))
    assert result.update == read_metrics(tmp_path)[-1]["update"] > 0
    assert multiprocessing.active_children() == []


def test_a_stall_inside_an_actor_process_comes_back_as_the_runs_error(
        tmp_path, monkeypatch, finished_run):
    # The child gives up after 8 s; the learner waits longer, since its first wait covers
    # the child's start (spawn, imports, environments), which can pass 8 s on a busy machine.
    monkeypatch.setattr(loop, "STALL_TIMEOUT_S", 60.0)
    make_actors = builder.make_actors  # its last argument: the actors' stall time-out
    monkeypatch.setattr(builder, "make_actors", lambda *args: make_actors(*args[:-1], 8.0))
    update = Learner.update
    calls = []

    def hanging_update(self, state, batch):
        calls.append(1)
        if len(calls) == 4:
            time.sleep(12.0)
        return update(self, state, batch)

    monkeypatch.setattr(Learner, "update", hanging_update)
    with pytest.raises(Stalled, match=r"actor 0\.0 waited 8 s for parameters version 4: the "
                                      r"learner stalled \(latest published: 3\)"):
        loop.train(quick_config(tmp_path, LONG_RUN, PROCESSES))
    assert checkpoint_updates(tmp_path)[-1] == read_metrics(tmp_path)[-1]["update"] == 4
    assert multiprocessing.active_children() == []


def test_a_killed_actor_process_ends_the_run_saying_so(tmp_path, finished_run):
    def kill_after_two_updates():
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            metrics = tmp_path / "metrics.jsonl"
            children = multiprocessing.active_children()
            if children and metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
                os.kill(children[0].pid, signal.SIGKILL)
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_after_two_updates)
    killer.start()
    try:
        with pytest.raises(ActorProcessError, match=r"actor 0\.0 \(pid \d+\) ended with exit "
                                                    r"code -9 without reporting an error"):
            loop.train(quick_config(tmp_path, LONG_RUN, PROCESSES))
    finally:
        killer.join()
    assert checkpoint_updates(tmp_path)[-1] == read_metrics(tmp_path)[-1]["update"] >= 2


def test_each_parameter_version_is_pickled_once_for_all_actor_processes():
    pickled = PickledParams()
    params = {"w": np.arange(4.0, dtype=np.float32)}
    first = pickled.message(3, params)
    assert pickled.message(3, {"w": None}) is first  # the same version: the same bytes
    older = pickled.message(2, {"w": params["w"] - 1})  # a lagging thread's older version
    assert pickle.loads(older)[1] == 2
    assert pickled.message(3, {"w": None}) is first  # ... does not evict the newest
    kind, version, host = pickle.loads(first)
    assert (kind, version) == ("params", 3)
    np.testing.assert_array_equal(host["w"], params["w"])
    assert pickle.loads(pickled.message(4, {"w": np.ones(2)}))[1] == 4


@dataclasses.dataclass(frozen=True)
class SmallTrajectory:
    """What PipeSender.put reads of a trajectory."""

    core_state: np.ndarray

    def replace(self, **changes) -> "SmallTrajectory":
        return dataclasses.replace(self, **changes)


def test_an_actor_process_sends_a_trajectory_only_once_the_last_one_is_taken():
    """A pipe's buffer alone would take a small task's trajectories without waiting, so that
    the queue no longer bounded a free-running actor's lag."""
    data_reader, data_writer = multiprocessing.Pipe(duplex=False)
    params_reader, params_writer = multiprocessing.Pipe(duplex=False)
    sender, stop = PipeSender(data_writer), threading.Event()
    threading.Thread(target=receive_params, daemon=True,
                     args=(params_reader, ParamsStore(), stop, sender.taken)).start()
    outcome = []

    def put():
        try:
            sender.put((SmallTrajectory(np.zeros(2)), []), stop, timeout_s=60.0)
            outcome.append("taken")
        except Stopped:
            outcome.append("stopped")

    putting = threading.Thread(target=put)
    putting.start()
    assert data_reader.recv()[0] == "trajectory"  # sent, and waiting for the learner
    putting.join(0.5)
    assert putting.is_alive() and not outcome
    params_writer.send(("taken",))  # the learner's process has queued it
    putting.join(5.0)
    assert outcome == ["taken"]
    putting = threading.Thread(target=put)
    putting.start()
    data_reader.recv()
    stop.set()  # never taken: the run stops
    putting.join(5.0)
    assert outcome == ["taken", "stopped"]
