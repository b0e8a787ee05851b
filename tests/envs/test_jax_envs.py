"""Every JAX task family: jit + vmap, spec, auto-reset, pytree state; the registry."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from gtrxl_jax.envs import (
    JAX_TASKS,
    EnvSpec,
    JaxEnv,
    batch_reset,
    batch_step,
    is_jax_task,
    make_env,
    make_jax_env,
    reset_keys,
)
from gtrxl_jax.envs.functional import play_first_episodes
from gtrxl_jax.envs.popgym_tasks import POPGYM_TASKS
from gtrxl_jax.nn.torsos import MLPTorso, make_torso
from tests.envs.jax_helpers import (
    episode_returns,
    jax_env,
    play,
    random_rollout,
    reset,
    run_random,
)

# One task of each parametrised family (short episodes), and every POPGym level.
TASKS = ("TMaze-L3", "MiniGrid-MemoryS7", "MemoryChain-L3", *POPGYM_TASKS)
NUM_ENVS = 3
NUM_STEPS = 1700  # two episodes of the longest POPGym game (RepeatFirstHard: 831 steps)


@pytest.mark.parametrize("task", TASKS)
def test_rollout_follows_the_spec_and_the_auto_reset_convention(task):
    env = jax_env(task)
    assert isinstance(env, JaxEnv) and env.task == task
    spec = env.spec(NUM_ENVS)
    assert isinstance(spec, EnvSpec)
    assert (spec.num_envs, spec.batch_size, spec.num_actions) == (NUM_ENVS, NUM_ENVS,
                                                                  env.num_actions)
    _, _, ts = random_rollout(task, NUM_ENVS, NUM_STEPS)

    # A step keeps the types of the state and timestep (a scan carries them).
    keys = reset_keys(0, NUM_ENVS)
    begun = jax.eval_shape(functools.partial(batch_reset, env), keys)
    stepped = jax.eval_shape(functools.partial(batch_step, env), begun[0],
                             jnp.zeros(NUM_ENVS, jnp.int32))
    types = functools.partial(jax.tree.map, lambda x: (x.shape, x.dtype, x.weak_type))
    assert types(stepped) == types(begun)

    lead = (NUM_STEPS + 1, NUM_ENVS)
    for leaf, leaf_spec in zip(jax.tree.leaves(ts.observation), jax.tree.leaves(spec.observation),
                               strict=True):
        assert leaf.shape == lead + leaf_spec.shape and leaf.dtype == leaf_spec.dtype
    assert ts.reward.dtype == ts.discount.dtype == np.float32
    assert ts.first.dtype == ts.last.dtype == ts.success.dtype == np.bool_
    for field in (ts.reward, ts.discount, ts.first, ts.last, ts.success):
        assert field.shape == lead

    # After a last step comes a first step with reward 0; only there.
    assert ts.first[0].all() and not ts.last[0].any()
    np.testing.assert_array_equal(ts.first[1:], ts.last[:-1])
    assert (ts.reward[ts.first] == 0).all() and (ts.discount[ts.first] == 1).all()
    assert ts.last.any(axis=0).all(), "every env should finish an episode"
    assert (ts.discount[~ts.last] == 1).all()  # discount 0 only where an episode ends
    assert not ts.success[~ts.last].any()
    if not spec.has_success:
        assert not ts.success.any()
    if task in POPGYM_TASKS or task.startswith("MemoryChain"):
        assert np.all(np.abs(episode_returns(ts)) <= 1 + 1e-5)


@pytest.mark.parametrize("task", ["TMaze-L3", "MiniGrid-MemoryS7", "MemoryChain-L3",
                                  "AutoencodeEasy"])
def test_state_is_a_pytree_that_survives_a_trip_through_numpy(task):
    """A state saved as numpy arrays (as a checkpoint would) plays on the same episodes."""
    states, _ = reset(task, seed=3, num_envs=NUM_ENVS)
    states, _ = run_random(task, states, 30, seed=3)
    leaves, treedef = jax.tree.flatten(states)
    assert leaves and all(leaf.shape[0] == NUM_ENVS for leaf in leaves)
    restored = jax.tree.unflatten(treedef, [np.array(leaf) for leaf in leaves])
    expected = run_random(task, states, 30, seed=4)
    jax.tree.map(np.testing.assert_array_equal, run_random(task, restored, 30, seed=4), expected)


def test_one_environment_runs_without_vmap_and_takes_a_typed_key():
    env = make_jax_env("TMaze-L1")
    state, timestep = jax.jit(env.reset)(jax.random.key(0))
    assert timestep.first and timestep.observation.shape == (4,)
    step = jax.jit(env.step)
    for _ in range(3):
        state, timestep = step(state, jnp.int32(0))
    assert timestep.last and timestep.discount == 0
    state, timestep = step(state, jnp.int32(1))
    assert timestep.first and timestep.reward == 0 and state.episode == 1


def test_random_policy_is_at_chance():
    _, _, tmaze = random_rollout("TMaze-L1", 64, 200)
    assert 0.45 < tmaze.success[tmaze.last].mean() < 0.55  # ~3200 episodes
    _, _, chain = random_rollout("MemoryChain-L3", 64, 200)
    assert 0.45 < chain.success[chain.last].mean() < 0.55  # ~2600 episodes
    np.testing.assert_allclose(episode_returns(chain).mean(), 0.0, atol=0.06)


def test_memory_chain_oracle_always_succeeds():
    memory = np.zeros(8, bool)

    def remember_context(timestep):
        memory[:] = np.where(timestep.first, timestep.observation[:, 2] > 0, memory)
        return memory.astype(np.int32)

    ts = play("MemoryChain-L3", remember_context, num_envs=8, num_steps=20)
    assert ts.last.sum() == 8 * 4  # episodes of 4 actions, then the reset step
    assert ts.success[ts.last].all() and (ts.reward[ts.last] == 1).all()


@pytest.mark.parametrize("task", ["MiniGrid-MemoryS7", "CountRecallHard"])
def test_the_spec_picks_a_torso_that_reads_the_observation(task):
    env = jax_env(task)
    _, _, ts = random_rollout(task, NUM_ENVS, NUM_STEPS)  # compiled already: reused
    torso = make_torso(env.spec(NUM_ENVS).observation, hidden_sizes=(8,))
    assert isinstance(torso, MLPTorso)
    observations = ts.observation[:10].reshape(10 * NUM_ENVS, -1)
    features = torso.apply(torso.init(jax.random.PRNGKey(0), observations), observations)
    assert features.shape == (10 * NUM_ENVS, 8)


def test_registry_names_every_jax_task_family():
    for task in (*JAX_TASKS, "TMaze-L0", "MiniGrid-MemoryS7", "MemoryChain-L1"):
        assert is_jax_task(task), task
    for task in ("MiniGrid-MemoryS9-v0", "Pong-v5", "RepeatPrevious", "TMaze-3"):
        assert not is_jax_task(task), task
    # The T-maze has both a host and a JAX implementation under one name.
    assert make_env("TMaze-L16", num_envs=2).spec.task == make_jax_env("TMaze-L16").task


@pytest.mark.parametrize("task, messages", [
    ("RepeatPreviousEZ", ["unknown JAX task 'RepeatPreviousEZ'; did you mean "
                          "'RepeatPreviousEasy'"]),
    ("tmaze-l10", ["did you mean 'TMaze-L10'"]),
    pytest.param("MiniGrid-MemoryS9-v0", [
        "did you mean 'MiniGrid-MemoryS9'",
        "'MiniGrid-MemoryS9-v0' is a host task: make it with make_env"],
        marks=pytest.mark.needs_envpool),
    pytest.param("CartPol-v1", [
        "unknown JAX task", "close host tasks (for make_env): 'CartPole-v1'"],
        marks=pytest.mark.needs_envpool),
    ("xyz", ["see gtrxl_jax.envs.JAX_TASKS", "'MiniGrid-MemoryS<size>'"]),
])
def test_unknown_jax_task_suggests_close_names(task, messages):
    with pytest.raises(ValueError) as error:
        make_jax_env(task)
    for message in messages:
        assert message in str(error.value)


@pytest.mark.needs_envpool
def test_host_errors_point_to_jax_tasks():
    with pytest.raises(ValueError, match="'MiniGrid-MemoryS7-v0'") as error:
        make_env("MiniGrid-MemoryS7", num_envs=1)
    assert "'MiniGrid-MemoryS7' is a JAX task: make it with make_jax_env" in str(error.value)
    with pytest.raises(ValueError, match=r"close JAX tasks \(for make_jax_env\): "
                                         "'CountRecallEasy'"):
        make_env("CountRecalEasy", num_envs=1)


@pytest.mark.parametrize("task, options, message", [
    ("TMaze-L3", {"batch_size": 2}, r"TMaze-L3 does not take the option\(s\) \['batch_size'\]; "
                                    "it takes no options"),
    ("CountRecallHard", {"num_decks": 2}, r"does not take the option\(s\) \['num_decks'\]"),
    ("MiniGrid-MemoryS5", {}, "MiniGrid-MemoryS<size> needs size >= 7, got 5"),
    ("MemoryChain-L0", {}, "MemoryChain-L<length> needs a length >= 1, got 0"),
    ("TMaze-L3", {"seed": 1}, "does not take the option"),
])
def test_bad_options_and_parameters_are_refused(task, options, message):
    with pytest.raises(ValueError, match=message):
        make_jax_env(task, **options)


def test_reset_keys_are_per_environment_and_checked():
    keys = reset_keys(7, 5)
    assert keys.shape == (5, 2) and keys.dtype == jnp.uint32
    assert len({tuple(row) for row in np.asarray(keys).tolist()}) == 5
    np.testing.assert_array_equal(keys, reset_keys(7, 5))
    with pytest.raises(ValueError, match="seed"):
        reset_keys(-1, 2)
    with pytest.raises(ValueError, match="num_envs"):
        reset_keys(0, 0)


def test_misshapen_keys_and_actions_give_actionable_errors():
    env = jax_env("TMaze-L3")
    states, _ = batch_reset(env, reset_keys(0, NUM_ENVS))
    with pytest.raises(AssertionError, match="one action per environment"):
        batch_step(env, states, jnp.zeros(NUM_ENVS - 1, jnp.int32))
    with pytest.raises(AssertionError, match="expected <class 'int'>"):
        batch_step(env, states, jnp.zeros(NUM_ENVS, jnp.float32))
    with pytest.raises(AssertionError, match="reset N environments with batch_reset"):
        env.reset(reset_keys(0, NUM_ENVS))


def test_first_episodes_are_tallied_once_each_and_later_ones_ignored():
    """TMaze-L2 always choosing 1 at the junction (step 3; 0 before): episodes of 4 steps,
    success where the cue is 1."""
    env = make_jax_env("TMaze-L2")

    def policy(steps, timestep):
        return jnp.where(steps == 3, 1, 0) * jnp.ones(16, jnp.int32), steps + 1

    tally = jax.jit(lambda keys: play_first_episodes(env, keys, policy, jnp.int32(0), 100))(
        reset_keys(0, 16))
    assert bool(tally.done.all()) and int(tally.steps) == 4
    np.testing.assert_array_equal(tally.lengths, 4.0)
    np.testing.assert_array_equal(tally.returns, tally.success)  # the T-maze pays 1 for success
    assert 0 < float(tally.success.sum()) < 16  # some cues up, some down
    limited = play_first_episodes(env, reset_keys(0, 16), policy, jnp.int32(0), 2)
    assert int(limited.steps) == 2 and not bool(limited.done.any())
