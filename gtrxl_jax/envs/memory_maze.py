"""Memory Maze behind gtrxl_jax's `VectorEnv`: N 3D mazes, each stepped in its own process.

Memory Maze (Pasukonis, Lillicrap & Hafner 2022, "Evaluating Long-Term Memory in 3D Mazes",
https://arxiv.org/abs/2210.13383) is a DMLab-like scavenger hunt on MuJoCo: an egocentric
64x64 RGB view (the target's colour drawn as the image border), 6 discrete actions (noop,
forward, left, right, forward+left, forward+right), +1 for each target reached, and a fixed
time limit (9x9: 1000 steps, 11x11: 2000, 13x13: 3000, 15x15: 4000) that *truncates* the
episode (last=True, discount 1). Task names: "MemoryMaze-9x9", "MemoryMaze-11x11",
"MemoryMaze-13x13", "MemoryMaze-15x15".

It is an optional extra, imported only inside the worker processes:

    pip install 'memory-maze==1.0.3' 'mujoco==3.17.0' 'dm_control==1.0.50' 'gym==0.26.2'
    apt-get install libosmesa6          # software rendering (MUJOCO_GL=osmesa), any machine

memory_maze imports `gym` on import (for its gym registration), so gym is required even
though gtrxl_jax drives the dm_env interface. Rendering uses MUJOCO_GL: this module
defaults to "osmesa" (CPU, ~36-50 steps/s per environment on one core) unless MUJOCO_GL is
set or the `mujoco_gl` option is given; on a GPU machine "egl" should render far faster
(not measured). Each environment holds ~1.4 GB of memory (~1 GB its textured MuJoCo model,
the rest the worker's Python with gtrxl_jax imported), so RAM bounds num_envs as much as
cores do.

Each worker is a fresh Python process (not a fork: the parent runs JAX's threads, and
not multiprocessing's spawn, which would re-run the user's `__main__`), connected by a
socket pair. With batch_size < num_envs, `recv` returns the first batch_size environments
to finish their step.
"""

import contextlib
import ctypes.util
import importlib.util
import io
import multiprocessing.connection
import os
import socket
import subprocess
import sys
import traceback
from typing import Any

import numpy as np

from gtrxl_jax.envs.base import RawStep, VectorEnv
from gtrxl_jax.envs.spec import PIXELS_HWC, EnvSpec, array_spec

SIZES = ("9x9", "11x11", "13x13", "15x15")
NUM_ACTIONS = 6
IMAGE_SHAPE = (64, 64, 3)
# The pinned versions seen to install and run together (Python 3.11, numpy 2.4.6).
REQUIREMENTS = ("memory-maze==1.0.3", "mujoco==3.17.0", "dm_control==1.0.50", "gym==0.26.2")
PIP_EXTRA = "memory_maze"
_MODULES = ("memory_maze", "dm_control", "mujoco", "gym")
_START_TIMEOUT_S = 300.0
_WORKER_COMMAND = "import sys; from gtrxl_jax.envs.memory_maze import serve; serve(*sys.argv[1:])"


def missing_requirements(mujoco_gl: str = "osmesa") -> list[str]:
    """Name what Memory Maze needs and this machine lacks (Python modules, the OSMesa library).

    Args:
      mujoco_gl: the MuJoCo rendering backend that will be used.

    Returns:
      The missing pieces, e.g. ["memory_maze", "libOSMesa (apt-get install libosmesa6)"];
      empty when everything is there.
    """
    missing = [name for name in _MODULES if importlib.util.find_spec(name) is None]
    if mujoco_gl == "osmesa" and ctypes.util.find_library("OSMesa") is None:
        missing.append("libOSMesa (apt-get install libosmesa6)")
    return missing


def require_memory_maze(task: str, mujoco_gl: str = "osmesa") -> None:
    """Raise ImportError naming the pip extra and Debian package if Memory Maze cannot run.

    Args:
      task: the task name, for the message.
      mujoco_gl: the MuJoCo rendering backend that will be used.
    """
    missing = missing_requirements(mujoco_gl)
    if missing:
        raise ImportError(
            f"{task} needs the optional Memory Maze extra, and {missing} is missing: "
            f"pip install 'gtrxl_jax[{PIP_EXTRA}]' (that is: {' '.join(REQUIREMENTS)}); "
            "for CPU rendering also apt-get install libosmesa6 (MUJOCO_GL=osmesa)."
        )


def serve(fd: str, size: str, seed: str) -> None:
    """A worker's main loop: build one maze, then answer messages on the socket `fd`.

    Messages: ("reset", None) and ("step", action) are answered with ("step", (observation,
    reward, last, discount)); a "step" after a last step resets instead (its action is
    ignored), as `VectorEnv` requires. ("close", None) or a closed socket ends the loop.
    Failures are sent back as ("error", traceback) for the parent to raise.
    """
    conn = multiprocessing.connection.Connection(int(fd))
    try:
        # gym 0.26 prints a deprecation notice on import; memory_maze imports it only to
        # register gym ids that gtrxl_jax does not use.
        with contextlib.redirect_stderr(io.StringIO()):
            from memory_maze import tasks
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)  # a warning on every reset otherwise
        env = getattr(tasks, f"memory_maze_{size}")(seed=int(seed), image_only_obs=True)
        conn.send(("ready", None))
    except Exception:  # noqa: BLE001  (reported to the parent, which raises it)
        conn.send(("error", traceback.format_exc()))
        return
    needs_reset = True
    try:
        while True:
            command, action = conn.recv()
            if command == "close":
                break
            if command == "reset" or needs_reset:
                timestep = env.reset()
            else:
                timestep = env.step(int(action))
            needs_reset = timestep.last()
            discount = 1.0 if timestep.discount is None else float(timestep.discount)
            conn.send(
                (
                    "step",
                    (
                        timestep.observation,
                        float(timestep.reward or 0.0),
                        bool(timestep.last()),
                        discount,
                    ),
                )
            )
    except EOFError:
        pass  # the parent went away
    except Exception:  # noqa: BLE001
        conn.send(("error", traceback.format_exc()))
    finally:
        env.close()
        conn.close()


class MemoryMaze(VectorEnv):
    """N Memory Mazes of one size, each in a worker process, behind the `VectorEnv` interface."""

    def __init__(
        self,
        size: str,
        num_envs: int,
        seed: int = 0,
        batch_size: int | None = None,
        task: str | None = None,
        mujoco_gl: str | None = None,
    ):
        """Start N worker processes and wait until every maze is built.

        Args:
          size: "9x9", "11x11", "13x13" or "15x15".
          num_envs: N >= 1 (one process and ~1.4 GB each).
          seed: maze i is generated from seed + i; the same seed gives the same mazes.
          batch_size: rows per `recv` (default N: synchronous use).
          task: the task name to put in the spec (default "MemoryMaze-{size}").
          mujoco_gl: MuJoCo's rendering backend ("osmesa", "egl", "glfw"); default the
            MUJOCO_GL environment variable, else "osmesa".

        Raises:
          ValueError: an unknown size or a bad batch layout.
          ImportError: the optional extra or libOSMesa is missing (names what to install).
          RuntimeError: a worker failed to build its maze (with the worker's traceback).
        """
        if size not in SIZES:
            raise ValueError(f"Memory Maze size must be one of {SIZES}, got {size!r}")
        task = task or f"MemoryMaze-{size}"
        gl = mujoco_gl or os.environ.get("MUJOCO_GL") or "osmesa"
        require_memory_maze(task, gl)
        batch_size = num_envs if batch_size is None else batch_size
        super().__init__(
            EnvSpec(
                task=task,
                family="memory_maze",
                observation=array_spec(IMAGE_SHAPE, np.uint8),
                observation_kind=PIXELS_HWC,
                num_actions=NUM_ACTIONS,
                num_envs=num_envs,
                batch_size=batch_size,
                has_success=False,
            )
        )
        self._conns: list[multiprocessing.connection.Connection] = []
        self._processes: list[subprocess.Popen] = []
        for env_id in range(num_envs):
            parent_end, child_end = socket.socketpair()
            with child_end:
                self._processes.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-c",
                            _WORKER_COMMAND,
                            str(child_end.fileno()),
                            size,
                            str(seed + env_id),
                        ],
                        pass_fds=(child_end.fileno(),),
                        stdin=subprocess.DEVNULL,
                        env={**os.environ, "MUJOCO_GL": gl},
                    )
                )
            self._conns.append(multiprocessing.connection.Connection(parent_end.detach()))
        self._env_id_of = {conn: env_id for env_id, conn in enumerate(self._conns)}
        self._in_flight = np.zeros(num_envs, dtype=bool)  # stepped, result not yet received
        self._done: list[tuple[int, tuple]] = []  # (env id, result), in order of arrival
        try:
            for env_id, conn in enumerate(self._conns):
                if not conn.poll(_START_TIMEOUT_S):
                    raise RuntimeError(
                        f"Memory Maze worker {env_id} did not start in {_START_TIMEOUT_S:.0f} s"
                    )
                self._receive(env_id)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        """Stop the worker processes."""
        for conn in self._conns:
            with contextlib.suppress(OSError):
                conn.send(("close", None))
        for process in self._processes:
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for conn in self._conns:
            conn.close()
        self._conns, self._processes = [], []

    def _async_reset(self) -> None:
        self._drain()
        for conn in self._conns:
            conn.send(("reset", None))
        self._in_flight[:] = True

    def _send(self, actions: np.ndarray, env_ids: np.ndarray) -> None:
        if self._in_flight[env_ids].any():
            busy = env_ids[self._in_flight[env_ids]]
            raise ValueError(
                f"env_ids {busy} already have a step in flight; recv() their result "
                "before sending them new actions"
            )
        for action, env_id in zip(actions, env_ids, strict=True):
            self._conns[env_id].send(("step", int(action)))
        self._in_flight[env_ids] = True

    def _recv(self) -> RawStep:
        batch_size = self._spec.batch_size
        self._collect(batch_size)
        ready, self._done = self._done[:batch_size], self._done[batch_size:]
        ready.sort(key=lambda item: item[0])
        env_ids = np.array([env_id for env_id, _ in ready], np.int32)
        self._in_flight[env_ids] = False
        columns = zip(*(result for _, result in ready), strict=True)
        observation, reward, last, discount = (np.array(column) for column in columns)
        reward = reward.astype(np.float32)
        terminated = last & (discount == 0.0)
        truncated = last & ~terminated
        return RawStep(
            observation=observation.astype(np.uint8, copy=False),
            reward=reward,
            terminated=terminated,
            truncated=truncated,
            env_ids=env_ids,
            score=reward,
            episode_over=last,
            success=None,
        )

    def _collect(self, count: int) -> None:
        """Wait until `count` results have arrived (results not yet returned by `_recv`)."""
        while len(self._done) < count:
            received = {env_id for env_id, _ in self._done}
            waiting = [self._conns[i] for i in np.flatnonzero(self._in_flight) if i not in received]
            if not waiting:
                raise RuntimeError(
                    f"recv() needs {count} environments with a result but only "
                    f"{len(self._done)} have one; send() actions for the env ids of the "
                    "previous recv() first"
                )
            for conn in multiprocessing.connection.wait(waiting):
                env_id = self._env_id_of[conn]
                self._done.append((env_id, self._receive(env_id)))

    def _drain(self) -> None:
        """Wait for and drop every step in flight (before a reset of all environments)."""
        self._collect(int(self._in_flight.sum()))
        self._done = []
        self._in_flight[:] = False

    def _receive(self, env_id: int) -> Any:
        """The next message of a worker: its payload, or a RuntimeError if it failed or died."""
        try:
            kind, payload = self._conns[env_id].recv()
        except EOFError:
            code = self._processes[env_id].poll()
            raise RuntimeError(
                f"Memory Maze worker {env_id} exited (exit code {code}) without answering; "
                "its error, if any, is on stderr"
            ) from None
        if kind == "error":
            raise RuntimeError(f"Memory Maze worker {env_id} failed:\n{payload}")
        return payload
