"""Memory Maze behind VectorEnv (skipped unless the memory_maze extra and libOSMesa are there)."""

import numpy as np
import pytest

from gtrxl_jax.envs import make_env
from gtrxl_jax.envs.memory_maze import (
    IMAGE_SHAPE,
    NUM_ACTIONS,
    missing_requirements,
    require_memory_maze,
)

requires_memory_maze = pytest.mark.skipif(
    bool(missing_requirements()), reason=f"Memory Maze not installed: {missing_requirements()}"
)


def test_missing_extra_names_the_pip_extra_and_the_apt_package(monkeypatch):
    monkeypatch.setattr(
        "gtrxl_jax.envs.memory_maze.missing_requirements", lambda gl: ["memory_maze"]
    )
    with pytest.raises(ImportError, match=r"gtrxl_jax\[memory_maze\].*libosmesa6"):
        require_memory_maze("MemoryMaze-9x9")


def test_unknown_options_are_rejected_before_any_process_starts():
    with pytest.raises(ValueError, match="does not take"):
        make_env("MemoryMaze-9x9", num_envs=1, max_episode_steps=10)


@requires_memory_maze
@pytest.mark.timeout(300)
def test_timestep_conventions_and_async_batches():
    with make_env("MemoryMaze-9x9", num_envs=2, seed=0) as env:
        spec = env.spec
        assert spec.observation.shape == IMAGE_SHAPE and spec.num_actions == NUM_ACTIONS
        assert spec.observation_kind == "pixels_hwc" and not spec.has_success
        timestep = env.reset()
        assert timestep.observation.shape == (2, *IMAGE_SHAPE)
        assert timestep.observation.dtype == np.uint8
        assert timestep.first.all() and not timestep.last.any()
        assert (timestep.reward == 0).all() and (timestep.discount == 1).all()
        assert timestep.reward.dtype == np.float32
        for action in range(NUM_ACTIONS):
            timestep = env.step(np.full(2, action, np.int32))
            assert not timestep.first.any() and not timestep.last.any()
            assert timestep.observation.shape == (2, *IMAGE_SHAPE)
        with pytest.raises(ValueError, match="actions must lie"):
            env.step(np.full(2, NUM_ACTIONS, np.int32))
    with make_env("MemoryMaze-9x9", num_envs=3, seed=0, batch_size=2) as env:
        env.async_reset()
        seen_first = set()
        for _ in range(4):
            timestep, env_ids = env.recv()
            assert len(env_ids) == 2 and list(env_ids) == sorted(env_ids)
            seen_first |= {int(i) for i, f in zip(env_ids, timestep.first, strict=True) if f}
            env.send(np.zeros(2, np.int32), env_ids)
        assert seen_first == {0, 1, 2}


@requires_memory_maze
@pytest.mark.slow
@pytest.mark.timeout(600)
def test_time_limit_truncates_and_the_next_step_starts_a_new_episode():
    # 9x9: 250 s at 4 actions/s = 1000 steps, then a truncation (discount 1), not a terminal.
    with make_env("MemoryMaze-9x9", num_envs=1, seed=1) as env:
        env.reset()
        rng = np.random.default_rng(0)
        for t in range(1, 1001):
            timestep = env.step(rng.integers(0, NUM_ACTIONS, 1, dtype=np.int32))
            assert timestep.last[0] == (t == 1000)
        assert timestep.discount[0] == 1.0 and not timestep.first[0]
        timestep = env.step(np.zeros(1, np.int32))
        assert timestep.first[0] and timestep.reward[0] == 0 and not timestep.last[0]
        (episode,) = env.pop_episodes()
        assert episode.length == 1000 and episode.success is None
        assert episode.episode_return == int(episode.episode_return)  # +1 per target


@requires_memory_maze
@pytest.mark.timeout(300)
def test_a_worker_that_cannot_build_its_maze_raises_with_its_traceback():
    with pytest.raises(RuntimeError, match="worker 0 failed"):
        make_env("MemoryMaze-9x9", num_envs=1, mujoco_gl="no-such-backend")
