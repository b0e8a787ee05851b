"""Two processes on 127.0.0.1 joined by jax.distributed train as one: identical parameters."""

import socket
import subprocess
import sys

import numpy as np

from tests.environment import REPO, child_env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_two_processes_end_with_identical_params(tmp_path):
    port = free_port()
    env = child_env()
    workers = [
        subprocess.Popen(
            [sys.executable, "-m", "tests.train.distributed_worker", str(port), str(i),
             str(tmp_path / "run"), str(tmp_path / f"params{i}.npz")],
            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for i in range(2)
    ]
    outputs = []
    try:
        for worker in workers:
            outputs.append(worker.communicate(timeout=240)[0])
    finally:
        for worker in workers:
            worker.kill()
    for worker, output in zip(workers, outputs, strict=True):
        assert worker.returncode == 0, output[-3000:]
    params = [np.load(tmp_path / f"params{i}.npz") for i in range(2)]
    assert int(params[0]["update"]) == 3 and int(params[0]["devices"]) == 4
    assert params[0].files == params[1].files
    for name in params[0].files:
        np.testing.assert_array_equal(params[0][name], params[1][name])
    assert (tmp_path / "run" / "checkpoints" / "3").is_dir()
