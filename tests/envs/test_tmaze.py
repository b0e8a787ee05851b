import numpy as np
import pytest

from gtrxl_jax.envs import TMaze, make_env
from gtrxl_jax.envs.episodes import summarize

CUE_LEFT, CUE_RIGHT, CORRIDOR, JUNCTION, END = np.eye(5, 4, dtype=np.float32)


def run_policy(env, policy, num_steps, rng=None):
    """Steps env synchronously; policy(timestep, cue [B]) -> actions [B]. Returns timesteps."""
    timestep = env.reset()
    cue = np.zeros(env.spec.num_envs, np.int64)
    timesteps = [timestep]
    for _ in range(num_steps):
        cue = np.where(timestep.first, timestep.observation[:, 1] > 0, cue)
        timestep = env.step(policy(timestep, cue))
        timesteps.append(timestep)
    return timesteps


def remember_cue(timestep, cue):
    return cue.astype(np.int32)


def always_left(timestep, cue):
    return np.zeros_like(cue, dtype=np.int32)


def test_episode_layout_and_timestep_semantics():
    length = 3
    env = TMaze(corridor_length=length, num_envs=2, seed=0)
    timesteps = run_policy(env, remember_cue, num_steps=2 * (length + 3))
    episode = timesteps[: length + 3]
    for t, ts in enumerate(episode):
        assert ts.first.tolist() == [t == 0] * 2
        assert ts.last.tolist() == [t == length + 2] * 2
        assert ts.discount.tolist() == [0.0 if t == length + 2 else 1.0] * 2
        assert ts.reward.tolist() == [1.0 if t == length + 2 else 0.0] * 2
    for row in range(2):
        assert episode[0].observation[row].tolist() in (CUE_LEFT.tolist(), CUE_RIGHT.tolist())
        for t in range(1, length + 1):
            np.testing.assert_array_equal(episode[t].observation[row], CORRIDOR)
        np.testing.assert_array_equal(episode[length + 1].observation[row], JUNCTION)
        np.testing.assert_array_equal(episode[length + 2].observation[row], END)
    # The step after a last step is the first step of a new episode, with reward 0.
    restart = timesteps[length + 3]
    assert restart.first.all() and not restart.last.any()
    assert (restart.reward == 0).all() and (restart.discount == 1).all()
    assert restart.observation.dtype == np.float32 and restart.observation.shape == (2, 4)
    episodes = env.pop_episodes()
    assert [e.length for e in episodes] == [length + 2] * 4
    assert env.pop_episodes() == []


def test_optimal_policy_always_succeeds():
    env = make_env("TMaze-L10", num_envs=16, seed=1)
    run_policy(env, remember_cue, num_steps=20 * 13)
    episodes = env.pop_episodes()
    assert len(episodes) == 16 * 20
    assert all(e.success and e.episode_return == 1.0 and e.length == 12 for e in episodes)


def test_policy_that_ignores_the_cue_succeeds_half_the_time():
    env = make_env("TMaze-L5", num_envs=32, seed=2)
    run_policy(env, always_left, num_steps=50 * 8)
    stats = summarize(env.pop_episodes())
    assert stats["episodes"] == 32 * 50
    assert 0.45 < stats["success"] < 0.55  # 1600 episodes: 4 standard deviations
    assert stats["episode_return"] == stats["success"]


def test_actions_outside_the_junction_do_not_matter():
    corridor_policies = [always_left, lambda ts, cue: 1 - always_left(ts, cue)]
    results = []
    for policy in corridor_policies:
        env = TMaze(corridor_length=4, num_envs=8, seed=3)

        def choose_at_junction(ts, cue, policy=policy):
            at_junction = ts.observation[:, 3] > 0
            return np.where(at_junction, cue, policy(ts, cue)).astype(np.int32)

        run_policy(env, choose_at_junction, num_steps=30)
        results.append([(e.env_id, e.episode_return) for e in env.pop_episodes()])
    assert results[0] == results[1]
    assert all(r == 1.0 for _, r in results[0])


def test_same_seed_same_episodes_different_seed_different_cues():
    def cues(seed):
        env = TMaze(corridor_length=2, num_envs=8, seed=seed)
        timesteps = run_policy(env, always_left, num_steps=40)
        return np.stack([ts.observation for ts in timesteps])

    np.testing.assert_array_equal(cues(7), cues(7))
    assert not np.array_equal(cues(7), cues(8))


def test_async_send_recv_orders_rows_and_follows_the_conventions():
    env = make_env("TMaze-L2", num_envs=8, seed=0, batch_size=4)
    assert env.spec.is_async
    with pytest.raises(RuntimeError, match="async_reset"):
        env.reset()
    env.async_reset()
    last = {}
    for _ in range(60):
        timestep, env_ids = env.recv()
        assert env_ids.shape == (4,) and (np.diff(env_ids) > 0).all()
        for row, env_id in enumerate(env_ids.tolist()):
            expected_first = last.get(env_id, True)
            assert timestep.first[row] == expected_first
            last[env_id] = bool(timestep.last[row])
        env.send(np.ones(4, np.int32), env_ids)
    assert sorted(last) == list(range(8))
    assert len(env.pop_episodes()) > 0


def test_async_misuse_gives_actionable_errors():
    env = TMaze(corridor_length=1, num_envs=4, batch_size=2)
    env.async_reset()
    _, env_ids = env.recv()
    with pytest.raises(ValueError, match="in flight"):
        env.send(np.zeros(2, np.int32), np.array([2, 3]))
    _, _ = env.recv()
    with pytest.raises(RuntimeError, match="send"):
        env.recv()
    with pytest.raises(ValueError, match="actions must have shape"):
        env.send(np.zeros(3, np.int32), env_ids)
    with pytest.raises(ValueError, match=r"actions must lie in \[0, 2\)"):
        env.send(np.array([0, 2]), env_ids)


def test_registry_parses_the_corridor_length_and_rejects_bad_arguments():
    env = make_env("TMaze-L7", num_envs=3)
    assert env.corridor_length == 7
    assert env.spec.task == "TMaze-L7" and env.spec.family == "tmaze"
    assert env.spec.num_actions == 2 and env.spec.observation_kind == "vector"
    with pytest.raises(ValueError, match="does not take the option"):
        make_env("TMaze-L7", num_envs=3, max_episode_steps=5)
    with pytest.raises(ValueError, match="num_envs"):
        make_env("TMaze-L7", num_envs=0)
    with pytest.raises(ValueError, match="batch_size"):
        make_env("TMaze-L7", num_envs=2, batch_size=3)
    with pytest.raises(ValueError, match="seed"):
        make_env("TMaze-L7", num_envs=2, seed=-1)
