"""Two processes on 127.0.0.1 joined by jax.distributed train as one: identical parameters,
and a process killed mid-run ends the other within seconds, naming it. The watch that ends
them (placement.PeerWatch) is also tested alone, on an in-memory key-value store.

The processes run on the CPU (2 devices each) on any machine: what is tested is how they
join and part, which an accelerator does not change.
"""

import contextlib
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import jax
import numpy as np
import pytest

from gtrxl_jax.config import ConfigError
from gtrxl_jax.train import placement
from gtrxl_jax.train.placement import PeerWatch
from tests.environment import REPO, child_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_workers(tmp_path, *overrides: str) -> list[subprocess.Popen]:
    """Processes 0 and 1 of a tiny two-process run logging to tmp_path / "run"; process i
    writes its output to tmp_path / f"output{i}.txt"."""
    port, env = free_port(), child_env(JAX_PLATFORMS="cpu")
    workers = []
    for i in range(2):
        with open(tmp_path / f"output{i}.txt", "w") as output:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "tests.train.distributed_worker", str(port), str(i),
                 str(tmp_path / "run"), str(tmp_path / f"params{i}.npz"), *overrides],
                cwd=REPO, env=env, stdout=output, stderr=subprocess.STDOUT))
    return workers


def output(tmp_path, i: int) -> str:
    """The end of process i's output."""
    return (tmp_path / f"output{i}.txt").read_text()[-3000:]


@pytest.mark.parametrize("loop", ["actor_learner", "on_device"])
def test_two_processes_end_with_identical_params(tmp_path, loop):
    workers = start_workers(tmp_path, f"learner.loop={loop}")
    params = identical_results(tmp_path, workers, timeout_s=240)
    assert int(params["update"]) == 3 and int(params["devices"]) == 4
    assert not params["interrupted"]
    assert (tmp_path / "run" / "checkpoints" / "3").is_dir()


@pytest.mark.parametrize(("loop", "signalled"), [("on_device", 1), ("actor_learner", 0)])
def test_a_signal_to_one_process_stops_every_process_at_the_same_update(
        tmp_path, loop, signalled):
    """A process stopping on its own would leave the others waiting in the next update's
    collective for it, and it waiting for them at its final checkpoint's barrier: for ever,
    as every process still beats."""
    workers = start_workers(tmp_path, f"learner.loop={loop}", "learner.total_env_steps=1000000")
    try:
        wait_for_first_record(tmp_path, workers)
        workers[signalled].send_signal(signal.SIGTERM)
    except BaseException:
        for worker in workers:
            worker.kill()
        raise
    params = identical_results(tmp_path, workers, timeout_s=60)
    assert params["interrupted"]  # on both: neither evaluated the final parameters
    assert int(params["update"]) < 1000000 // 32
    assert (tmp_path / "run" / "checkpoints" / str(int(params["update"]))).is_dir()


def identical_results(tmp_path, workers: list[subprocess.Popen], timeout_s: float) -> dict:
    """Wait for both processes to end well; assert that they saved the same result (final
    parameters, update, interruption), and return it."""
    try:
        for worker in workers:
            worker.wait(timeout=timeout_s)
    finally:
        for worker in workers:
            worker.kill()
    for i, worker in enumerate(workers):
        assert worker.returncode == 0, output(tmp_path, i)
    results = [dict(np.load(tmp_path / f"params{i}.npz")) for i in range(2)]
    assert results[0].keys() == results[1].keys()
    for name in results[0]:
        np.testing.assert_array_equal(results[0][name], results[1][name])
    return results[0]


def wait_for_first_record(tmp_path, workers: list[subprocess.Popen]) -> None:
    """Return once process 0 has logged an update (it logs every update)."""
    metrics = tmp_path / "run" / "metrics.jsonl"
    deadline = time.monotonic() + 240
    while not (metrics.exists() and metrics.read_text().strip()):
        assert all(worker.poll() is None for worker in workers), output(tmp_path, 0)
        assert time.monotonic() < deadline, "no update within 240 s"
        time.sleep(0.1)


def test_a_process_killed_mid_run_ends_the_other_within_seconds_naming_it(
        tmp_path, record_property):
    """Without the watch, process 0 would wait for jax.distributed's heartbeat time-out
    (100 s by default) in a collective or a checkpoint's barrier."""
    survivor, victim = start_workers(tmp_path, "learner.total_env_steps=1000000")
    try:
        wait_for_first_record(tmp_path, [survivor, victim])
        victim.kill()  # SIGKILL
        killed_at = time.monotonic()
        survivor.wait(timeout=60)
        took_s = time.monotonic() - killed_at
        record_property("survivor_stopped_after_s", round(took_s, 1))
    finally:
        for worker in (survivor, victim):
            worker.kill()
    assert survivor.returncode == 1, output(tmp_path, 0)
    assert "process 1 of 2 stopped responding" in output(tmp_path, 0), output(tmp_path, 0)
    # PEER_TIMEOUT_S, a beat or two, and process 0's wait as the coordinator (~13 s), well
    # before jax.distributed's own heartbeat time-out would abort it.
    assert took_s < 2 * placement.PEER_TIMEOUT_S, took_s
    assert 2 * placement.PEER_TIMEOUT_S <= placement.HEARTBEAT_TIMEOUT_S / 2  # jax's can't win


class MemoryStore:
    """The part of jax.distributed's client that PeerWatch uses, in memory."""

    def __init__(self):
        self.entries: dict[str, str] = {}
        self.reachable = True

    def key_value_set(self, key: str, value: str, allow_overwrite: bool = False) -> None:
        self._check()
        self.entries[key] = value

    def key_value_dir_get(self, prefix: str) -> list[tuple[str, str]]:
        self._check()
        return [(key, value) for key, value in self.entries.items() if key.startswith(prefix)]

    def _check(self) -> None:
        if not self.reachable:
            raise jax.errors.JaxRuntimeError("UNAVAILABLE: Failed to send RPC to coordination "
                                             "service.\nmore detail")


TIMEOUT_S, BEAT_S = 0.5, 0.02


@pytest.fixture
def exits(monkeypatch) -> list[int]:
    """The exit codes the watch ends the process with (os._exit records them instead)."""
    codes = []
    monkeypatch.setattr(os, "_exit", codes.append)
    return codes


def watch(store: MemoryStore, process_id: int = 1) -> PeerWatch:
    return PeerWatch(store, process_id, 3, timeout_s=TIMEOUT_S, beat_s=BEAT_S).start()


def wait_for(condition, within_s: float = 5.0) -> None:
    """Return once condition() holds (fail after within_s)."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within_s
        time.sleep(BEAT_S / 2)


def beat(store: MemoryStore, *peers: int) -> None:
    for peer in peers:
        key = f"gtrxl_jax/peers/beat/{peer}"
        store.entries[key] = str(int(store.entries.get(key, "0")) + 1)


@contextlib.contextmanager
def beating(store: MemoryStore, *peers: int) -> Iterator[None]:
    """Peers that beat every BEAT_S inside."""
    stop = threading.Event()

    def run():
        while not stop.wait(BEAT_S):
            beat(store, *peers)

    beat(store, *peers)
    thread = threading.Thread(target=run)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def test_a_silent_peer_ends_the_process_after_the_timeout_naming_it(exits, caplog):
    store, start = MemoryStore(), time.monotonic()
    watcher = watch(store)
    with beating(store, 0):  # peer 2 is silent
        wait_for(lambda: exits)
    assert exits == [1] and time.monotonic() - start > TIMEOUT_S
    assert "process 2 of 3 stopped responding (no heartbeat for" in caplog.text
    assert "; ending process 1 too" in caplog.text
    watcher.stop()


def test_a_peers_failure_ends_the_process_and_one_that_ended_is_not_watched(exits, caplog):
    store = MemoryStore()
    store.entries["gtrxl_jax/peers/done/2"] = ""  # ended normally: its silence is no failure
    watcher = watch(store)
    with beating(store, 0):
        time.sleep(3 * TIMEOUT_S)
        assert exits == []
        store.entries["gtrxl_jax/peers/failed/0"] = "RuntimeError: boom"
        wait_for(lambda: exits)
    assert exits == [1]
    assert "process 0 of 3 failed (RuntimeError: boom); ending process 1 too" in caplog.text
    watcher.stop()
    assert "gtrxl_jax/peers/done/1" in store.entries


def test_a_failing_process_publishes_its_error_with_the_clis_exit_code(exits, caplog):
    store = MemoryStore()
    watcher = watch(store)
    with beating(store, 0, 2):
        try:
            raise ConfigError("learner.learner_devices=(0, 7) must be indices")
        except ConfigError as error:
            watcher.fail(error)
    assert store.entries["gtrxl_jax/peers/failed/1"] == (
        "ConfigError: learner.learner_devices=(0, 7) must be indices")
    assert exits == [2]
    assert caplog.records[-1].levelno == logging.ERROR and caplog.records[-1].exc_info
    watcher.stop()


def test_an_error_a_dead_peer_caused_names_the_peer_though_its_last_beat_is_read_after(
        exits, caplog):
    """A collective fails the moment its peer dies, often before the watch has read the
    peer's last beat; that beat, read after the error, must not count as the peer alive."""
    store = MemoryStore()
    watcher = watch(store)
    with beating(store, 0, 2):
        time.sleep(3 * TIMEOUT_S)
    with beating(store, 0):  # peer 2 beats once more, then dies; the error follows at once
        beat(store, 2)
        failing = threading.Thread(target=watcher.fail, args=(RuntimeError("reset by peer"),),
                                   daemon=True)  # blocks once the watch has ended the process
        failing.start()
        wait_for(lambda: exits)
    assert exits == [1]
    assert "process 2 of 3 stopped responding" in caplog.text
    assert "Process 1 of 3 failed" not in caplog.text
    watcher.stop()


def test_an_unreachable_coordinator_ends_the_process_naming_it(exits, caplog):
    store = MemoryStore()
    watch(store)
    store.reachable = False
    wait_for(lambda: exits)
    assert exits == [1]
    assert ("process 0 of 3, the coordinator, stopped responding (UNAVAILABLE: Failed to send "
            "RPC to coordination service.); ending process 1 too") in caplog.text
