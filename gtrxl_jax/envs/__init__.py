"""Environments for gtrxl_jax: every task behind one batched interface and one TimeStep.

`make_env(task, num_envs)` builds either one of the project's own tasks (the
passive T-maze, "TMaze-L<corridor_length>"; Memory Maze, "MemoryMaze-9x9" .. "-15x15",
an optional extra) or any envpool task with a pixel,
vector or MiniGrid observation and a Discrete action space ("Pong-v5",
"MyWayHome-v1", "MiniGrid-MemoryS7-v0", "MazeMemory-v0", "CartPole-v1", ...), or
your own, gymnasium's included, by a factory ("mypkg.envs:make", `gtrxl_jax.envs.factories`).
All of them are `VectorEnv`s: a synchronous `reset`/`step`, an asynchronous
`async_reset`/`send`/`recv` for actors, an `EnvSpec`, and episode statistics
with the unclipped reward (`pop_episodes`). The conventions on first, last,
discount and row order are in `gtrxl_jax.envs.base`.

    env = make_env("TMaze-L10", num_envs=8, seed=0)
    timestep = env.reset()                       # TimeStep, rows [8]
    timestep = env.step(np.zeros(8, np.int32))
    episodes = env.pop_episodes()                # completed episodes since last call

`make_jax_env(task)` builds one JAX-native environment (`JaxEnv`: pure `reset`/`step`
functions, batched with `jax.vmap`) for loops that step environments and agent inside one
jitted program: the T-maze ("TMaze-L10", the same episodes as the host one),
xminigrid's MiniGrid Memory with a 3x3 view ("MiniGrid-MemoryS9"; the host
"MiniGrid-MemoryS9-v0" is envpool's, 7x7 view), bsuite's MemoryChain ("MemoryChain-L50")
and POPGym's card games ("RepeatPreviousEasy", "CountRecallHard", ...). Conventions in
`gtrxl_jax.envs.functional`.

    env = make_jax_env("TMaze-L10")
    states, timestep = batch_reset(env, reset_keys(seed=0, num_envs=8))  # JaxTimeStep [8]
    states, timestep = batch_step(env, states, jnp.zeros(8, jnp.int32))
"""

from typing import Any

import numpy as np

from gtrxl_jax.envs.base import VectorEnv
from gtrxl_jax.envs.episodes import Episode, summarize
from gtrxl_jax.envs.factories import is_factory, make_host_envs
from gtrxl_jax.envs.functional import (
    EnvState,
    JaxEnv,
    JaxTimeStep,
    batch_reset,
    batch_step,
    reset_keys,
)
from gtrxl_jax.envs.memory_maze import MemoryMaze
from gtrxl_jax.envs.registry import (
    JAX_TASKS,
    PROJECT_TASKS,
    find_project_task,
    is_envpool_task,
    is_jax_task,
    make_jax_env,
    unknown_task_error,
)
from gtrxl_jax.envs.spec import EnvSpec
from gtrxl_jax.envs.tmaze import TMaze
from gtrxl_jax.envs.types import TimeStep

__all__ = [
    "JAX_TASKS",
    "PROJECT_TASKS",
    "EnvSpec",
    "EnvState",
    "EnvpoolEnv",
    "Episode",
    "JaxEnv",
    "JaxTimeStep",
    "MemoryMaze",
    "TMaze",
    "TimeStep",
    "VectorEnv",
    "batch_reset",
    "batch_step",
    "is_jax_task",
    "make_env",
    "make_jax_env",
    "reset_keys",
    "summarize",
]

_MAX_SEED = 2**31


def make_env(
    task: str, num_envs: int, seed: int = 0, training: bool = True, **options: Any
) -> VectorEnv:
    """Make N environments of a task, by name.

    Args:
      task: a project task ("TMaze-L10": T-maze with corridor length 10), an envpool
        task name ("Pong-v5", "MiniGrid-MemoryS7-v0", ...), or a host factory's
        "package.module:function" (`gtrxl_jax.envs.factories`, e.g. gymnasium
        environments of your own).
      num_envs: N >= 1, the number of environments stepped together.
      seed: 0 <= seed < 2**31; the same seed gives the same episodes.
      training: the training variant of the task (Atari: clipped rewards and episodic
        life); False for evaluation. Episode statistics are unclipped either way.
      **options: batch_size (rows per `recv`, default N) and task options: for envpool
        tasks any envpool option (e.g. max_episode_steps), overriding gtrxl_jax's
        per-family defaults.

    Returns:
      The environments, not yet reset.

    Raises:
      ValueError: unknown task (with close names; a JAX task's name says to use
        `make_jax_env`), bad num_envs/seed/batch_size, an
        unknown option, or an observation or action space gtrxl_jax does not support.
    """
    if not _is_int(num_envs) or num_envs < 1:
        raise ValueError(f"num_envs must be an int >= 1, got {num_envs!r}")
    if not _is_int(seed) or not 0 <= seed < _MAX_SEED:
        raise ValueError(f"seed must be an int in [0, 2**31), got {seed!r}")
    if is_factory(task):
        return make_host_envs(task, num_envs, seed, training, options)
    found = find_project_task(task)
    if found is not None:
        project_task, match = found
        return project_task.build(match, num_envs, seed, training, options)
    if is_envpool_task(task):
        from gtrxl_jax.envs.envpool_env import EnvpoolEnv

        return EnvpoolEnv(task, num_envs, seed=seed, training=training, **options)
    raise unknown_task_error(task)


def _is_int(value: Any) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def __getattr__(name: str) -> Any:
    """`EnvpoolEnv`, imported on first use, so that tasks without envpool need none installed."""
    if name == "EnvpoolEnv":
        from gtrxl_jax.envs.envpool_env import EnvpoolEnv

        return EnvpoolEnv
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
