"""The envpool environments (skipped, saying why, where envpool is not installed)."""

import os

import jax
import numpy as np
import pytest

from tests.environment import ENVPOOL_MISSING

envpool = pytest.importorskip("envpool", reason=ENVPOOL_MISSING)

from gtrxl_jax.envs import EnvpoolEnv, make_env  # noqa: E402  (needs envpool)


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path, monkeypatch):
    """ViZDoom writes _vizdoom.ini and _vizdoom/ into the working directory."""
    monkeypatch.chdir(tmp_path)


def procgen_available():
    try:
        envpool.make_spec("MazeMemory-v0")
    except ImportError:
        return False
    return True


needs_procgen = pytest.mark.skipif(
    not procgen_available(), reason="Procgen needs the Qt 5 runtime: apt-get install libqt5gui5"
)

# envpool 1.2.5's ViZDoom start-up intermittently deadlocks (the game process idles and
# the pool waits for it forever: seen in 3 of 5 full runs here, once on an idle machine),
# so ViZDoom cases run only when asked for: GTRXL_TEST_VIZDOOM=1.
needs_vizdoom_opt_in = pytest.mark.skipif(
    os.environ.get("GTRXL_TEST_VIZDOOM") != "1",
    reason="ViZDoom start-up can deadlock in envpool 1.2.5; set GTRXL_TEST_VIZDOOM=1 to run",
)
vizdoom_time_limit = pytest.mark.timeout(120)  # a hang fails its test, not the whole run

# (task, options, number of steps, whether a time-limit truncation must be seen)
FAMILIES = [
    pytest.param("CartPole-v1", {"max_episode_steps": 15}, 60, True, id="classic_control"),
    pytest.param("MiniGrid-MemoryS7-v0", {"max_episode_steps": 20}, 45, True, id="minigrid"),
    pytest.param("Breakout-v5", {"max_episode_steps": 30}, 40, True, id="atari"),
    pytest.param("MyWayHome-v1", {"max_episode_steps": 10}, 25, True, id="vizdoom-mywayhome",
                 marks=[needs_vizdoom_opt_in, vizdoom_time_limit]),
    pytest.param("HealthGathering-v1", {"max_episode_steps": 10}, 25, True, id="vizdoom-health",
                 marks=[needs_vizdoom_opt_in, vizdoom_time_limit]),
    pytest.param("MazeMemory-v0", {}, 505, True, id="procgen", marks=needs_procgen),
]


def random_actions(spec, rng, size):
    return rng.integers(0, spec.num_actions, size=size).astype(np.int32)


def collect(env, num_steps, seed=0):
    rng = np.random.default_rng(seed)
    timesteps = [env.reset()]
    for _ in range(num_steps):
        timesteps.append(env.step(random_actions(env.spec, rng, env.spec.num_envs)))
    return timesteps


def assert_matches_spec(spec, timestep, batch):
    def check(leaf_spec, leaf):
        assert leaf.shape == (batch, *leaf_spec.shape) and leaf.dtype == leaf_spec.dtype

    jax.tree.map(check, spec.observation, timestep.observation)
    assert timestep.reward.shape == (batch,) and timestep.reward.dtype == np.float32
    assert timestep.discount.shape == (batch,) and timestep.discount.dtype == np.float32
    assert timestep.first.dtype == bool and timestep.last.dtype == bool


def assert_conventions(timesteps, expect_truncation):
    first = np.stack([ts.first for ts in timesteps])
    last = np.stack([ts.last for ts in timesteps])
    reward = np.stack([ts.reward for ts in timesteps])
    discount = np.stack([ts.discount for ts in timesteps])
    assert first[0].all() and not last[0].any()
    np.testing.assert_array_equal(first[1:], last[:-1])  # reset on the step after last
    assert (reward[first] == 0).all()
    assert np.isin(discount, [0.0, 1.0]).all()
    assert last[discount == 0].all()  # discount 0 only where an episode terminated
    assert last.any(), "no episode ended: the test proves nothing"
    if expect_truncation:
        assert (last & (discount == 1)).any(), "no time-limit truncation was seen"


@pytest.mark.parametrize("task, options, num_steps, expect_truncation", FAMILIES)
def test_timestep_semantics(task, options, num_steps, expect_truncation):
    with make_env(task, num_envs=3, seed=0, training=False, **options) as env:
        assert env.spec.batch_size == env.spec.num_envs == 3
        timesteps = collect(env, num_steps)
        for timestep in timesteps[:3]:
            assert_matches_spec(env.spec, timestep, batch=3)
        assert_conventions(timesteps, expect_truncation)
        episodes = env.pop_episodes()
        assert len(episodes) == sum(int(ts.last.sum()) for ts in timesteps)
        assert all((e.success is not None) == env.spec.has_success for e in episodes)


def test_family_specs():
    expected = {
        "Pong-v5": ("atari", "pixels_chw", (4, 84, 84), 6),
        "CartPole-v1": ("classic_control", "vector", (4,), 2),
    }
    for task, (family, kind, shape, num_actions) in expected.items():
        with make_env(task, num_envs=1) as env:
            spec = env.spec
            assert (spec.family, spec.observation_kind) == (family, kind)
            assert spec.observation.shape == shape and spec.num_actions == num_actions
    with make_env("MiniGrid-MemoryS7-v0", num_envs=1) as env:
        assert env.spec.observation_kind == "minigrid" and env.spec.has_success
        assert set(env.spec.observation) == {"image", "direction"}  # no mission string
        assert env.spec.observation["image"].shape == (7, 7, 3)


@needs_vizdoom_opt_in
@vizdoom_time_limit
def test_vizdoom_spec():
    with make_env("MyWayHome-v1", num_envs=1) as env:
        spec = env.spec
        assert (spec.family, spec.observation_kind) == ("vizdoom", "pixels_chw")
        assert spec.observation.shape == (12, 84, 84) and spec.num_actions == 18


@needs_procgen
def test_procgen_memory_modes():
    for task in ("MazeMemory-v0", "HeistMemory-v0"):
        with make_env(task, num_envs=1) as env:
            assert env.spec.family == "procgen" and env.spec.observation.shape == (3, 64, 64)
            assert env.spec.has_success and env.spec.num_actions == 15


def test_rows_are_ordered_by_env_id():
    # envpool seeds env i with seed + i, so row i must match a lone env seeded seed + i.
    rng = np.random.default_rng(0)
    actions = random_actions(make_env("CartPole-v1", 1).spec, rng, (5, 4))
    with make_env("CartPole-v1", num_envs=4, seed=10) as env:
        env.reset()
        batched = [env.step(a).observation for a in actions]
    for i in range(4):
        with make_env("CartPole-v1", num_envs=1, seed=10 + i) as lone:
            lone.reset()
            for t, a in enumerate(actions[:, i]):
                np.testing.assert_array_equal(lone.step(a[None]).observation[0], batched[t][i])


@pytest.mark.parametrize("task", ["CartPole-v1", "MiniGrid-MemoryS7-v0"])
def test_async_send_recv(task):
    # 5 envs in batches of 3: envpool hands back batches out of env-id order.
    rng = np.random.default_rng(0)
    env = make_env(task, num_envs=5, seed=0, batch_size=3, max_episode_steps=8)
    with env:
        with pytest.raises(RuntimeError, match="send"):
            env.step(np.zeros(5, np.int32))
        env.async_reset()
        last = {}
        ended = 0
        for _ in range(80):
            timestep, env_ids = env.recv()
            assert env_ids.shape == (3,) and (np.diff(env_ids) > 0).all()
            assert_matches_spec(env.spec, timestep, batch=3)
            for row, env_id in enumerate(env_ids.tolist()):
                assert timestep.first[row] == last.get(env_id, True)
                assert not (timestep.first[row] and timestep.reward[row] != 0)
                last[env_id] = bool(timestep.last[row])
                ended += int(timestep.last[row])
            env.send(random_actions(env.spec, rng, 3), env_ids)
        assert sorted(last) == [0, 1, 2, 3, 4] and ended > 0


def test_async_rows_follow_their_env_ids():
    # Each env's observations in async batches must be exactly those of a lone env
    # seeded like it (envpool seeds env i with seed + i).
    options = {"seed": 20, "max_episode_steps": 8}
    seen = {env_id: [] for env_id in range(5)}
    with make_env("CartPole-v1", num_envs=5, batch_size=3, **options) as env:
        env.async_reset()
        for _ in range(30):
            timestep, env_ids = env.recv()
            for row, env_id in enumerate(env_ids.tolist()):
                seen[env_id].append(timestep.observation[row])
            env.send(np.zeros(3, np.int32), env_ids)
    for env_id, observations in seen.items():
        options["seed"] = 20 + env_id
        with make_env("CartPole-v1", num_envs=1, **options) as lone:
            expected = [lone.reset().observation[0]]
            while len(expected) < len(observations):
                expected.append(lone.step(np.zeros(1, np.int32)).observation[0])
        np.testing.assert_array_equal(np.stack(observations), np.stack(expected))


def test_atari_statistics_use_unclipped_reward_and_whole_games():
    env = make_env("SpaceInvaders-v5", num_envs=4, seed=0, training=True, max_episode_steps=250)
    rng = np.random.default_rng(0)
    timesteps = [env.reset()]
    episodes = []
    while len(episodes) < 4:
        timesteps.append(env.step(random_actions(env.spec, rng, 4)))
        episodes += env.pop_episodes()
    env.close()
    reward = np.stack([ts.reward for ts in timesteps])
    last = np.stack([ts.last for ts in timesteps])
    discount = np.stack([ts.discount for ts in timesteps])
    assert set(np.unique(reward)) <= {0.0, 1.0}  # the learner sees clipped rewards
    assert (last & (discount == 0)).any()  # a lost life ends the learner's episode ...
    assert sorted(e.env_id for e in episodes) == [0, 1, 2, 3]  # ... but not the game
    for e in episodes:
        clipped_sum = reward[:, e.env_id].sum()
        assert e.length == 250  # whole game to the time limit, life resets not counted
        assert e.episode_return % 5 == 0 and e.episode_return >= 5 * clipped_sum > 0
        assert e.success is None


def test_unknown_task_suggests_close_names():
    with pytest.raises(ValueError, match="did you mean 'Pong-v5'"):
        make_env("Pong", num_envs=1)
    with pytest.raises(ValueError, match="'MiniGrid-MemoryS7-v0'"):
        make_env("MiniGrid-MemoryS7", num_envs=1)
    with pytest.raises(ValueError, match="'TMaze-L10'"):
        make_env("tmaze-l10", num_envs=1)


@pytest.fixture
def no_pool(monkeypatch):
    """Fails any test that starts envpool environments: errors must come before."""

    def fail(*args, **kwargs):
        raise AssertionError("an envpool pool was started before the arguments were checked")

    monkeypatch.setattr(envpool, "make_gymnasium", fail)


@pytest.mark.parametrize(
    "task, options, message",
    [
        ("Pendulum-v1", {}, "continuous"),
        ("MyWayHome-v1", {"use_combined_action": False}, "use_combined_action=True"),
        ("BinPack-v2", {}, "has no torso"),
        ("Pong-v5", {"frame_stack": 4}, r"does not take the option\(s\) \['frame_stack'\]"),
        ("Pong-v5", {"env_seed": [1]}, "make_env's own arguments"),
        ("Pong-v5", {"batch_size": 0}, "batch_size"),
    ],
)
def test_unsupported_tasks_and_options_fail_before_starting(no_pool, task, options, message):
    with pytest.raises(ValueError, match=message):
        make_env(task, num_envs=1, **options)


def test_bad_arguments_name_the_argument(no_pool):
    with pytest.raises(ValueError, match="num_envs"):
        make_env("Pong-v5", num_envs=0)
    with pytest.raises(ValueError, match="num_envs"):
        EnvpoolEnv("Pong-v5", num_envs=0)
    with pytest.raises(ValueError, match="unknown task"):
        EnvpoolEnv("TMaze-L10", num_envs=1)


def test_bad_actions_are_rejected():
    with make_env("CartPole-v1", num_envs=2) as env:
        env.reset()
        with pytest.raises(ValueError, match="integers"):
            env.step(np.zeros(2, np.float32))
        with pytest.raises(ValueError, match="shape"):
            env.step(np.zeros(3, np.int32))
        with pytest.raises(ValueError, match=r"\[0, 2\)"):
            env.step(np.array([0, 5]))
