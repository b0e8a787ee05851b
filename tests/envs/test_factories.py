"""Your own environments by factory: gymnasium ones on the host, JaxEnvs on device, and the
errors a user can make naming them (experiments/custom_env.py is the example)."""

import subprocess
import sys

import gymnasium
import jax
import numpy as np
import pytest

from experiments.custom_env import CueRecall
from gtrxl_jax.envs import JaxEnv, batch_reset, batch_step, make_env, make_jax_env, reset_keys
from gtrxl_jax.envs.gymnasium_env import GymnasiumVectorEnv
from gtrxl_jax.envs.registry import is_host_task, is_jax_task
from gtrxl_jax.envs.spec import VECTOR
from tests.environment import REPO, child_env
from tests.train.helpers import train_as_a_user

HOST, JAX = "experiments.custom_env:make", "experiments.custom_env:make_jax"


def test_a_host_factory_gives_gymnasium_envs_the_project_conventions():
    with make_env(HOST, 2, seed=3, delay=1) as env:
        assert isinstance(env, GymnasiumVectorEnv)
        assert (env.spec.task, env.spec.family, env.spec.observation_kind,
                env.spec.num_actions) == (HOST, "gymnasium", VECTOR, 2)
        first = env.reset()
        cues = first.observation[:, :2].argmax(-1)
        right = cues.astype(np.int32)
        steps = [first] + [env.step(np.asarray(actions, np.int32)) for actions in
                           ([0, 0], right, 1 - right)]
        # cue, blank, choice (last), then the new episode's cue: reward 0, first, action ignored
        assert [s.first.tolist() for s in steps[:4]] == [[True] * 2, [False] * 2, [False] * 2,
                                                         [True] * 2]
        assert steps[2].last.all() and steps[2].reward.tolist() == [1.0, 1.0]
        assert steps[3].reward.tolist() == [0.0, 0.0] and steps[3].discount.tolist() == [1, 1]
        assert steps[2].discount.tolist() == [0.0, 0.0]  # terminated: no bootstrap
        assert steps[0].observation.dtype == np.float32
        episodes = env.pop_episodes()
        assert [(e.episode_return, e.length) for e in episodes] == [(1.0, 2)] * 2
    with make_env(HOST, 2, seed=3, delay=1) as again:  # the same seed, the same cues
        np.testing.assert_array_equal(again.reset().observation, first.observation)


def test_a_jax_factory_makes_a_jax_env_the_on_device_loop_vmaps():
    env = make_jax_env(JAX, delay=1)
    assert isinstance(env, JaxEnv) and (is_jax_task(JAX), is_host_task(JAX)) == (True, False)
    assert (is_jax_task(HOST), is_host_task(HOST)) == (False, True)
    states, first = batch_reset(env, reset_keys(0, 4))
    cues = np.asarray(first.observation[:, :2].argmax(-1), np.int32)
    states, _ = batch_step(env, states, jax.numpy.zeros(4, np.int32))
    states, choice = batch_step(env, states, jax.numpy.asarray(cues))
    assert np.asarray(choice.last).all() and np.asarray(choice.success).all()
    np.testing.assert_array_equal(choice.reward, np.ones(4))


class SameStep(gymnasium.vector.SyncVectorEnv):
    """A vector env that resets within the last step (gymnasium's SAME_STEP mode)."""

    def __init__(self):
        super().__init__([CueRecall] * 2,
                         autoreset_mode=gymnasium.vector.AutoresetMode.SAME_STEP)


@pytest.mark.parametrize("make, message", [
    (SameStep, "auto-resets with AutoresetMode.SAME_STEP; make it with autoreset_mode="),
    (lambda: _with_action_space(gymnasium.spaces.Discrete(3, start=1)),
     "the action space must be Discrete(n) starting at 0"),
    (lambda: _with_observation_space(gymnasium.spaces.Dict({"x": CueRecall.observation_space})),
     "the observation space must be a Box"),
])
def test_gymnasium_envs_the_agent_cannot_drive_are_refused(make, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        GymnasiumVectorEnv(make(), task="mine")


def _with_action_space(space):
    env = gymnasium.vector.SyncVectorEnv([CueRecall] * 2)
    env.single_action_space = space
    return env


def _with_observation_space(space):
    env = gymnasium.vector.SyncVectorEnv([CueRecall] * 2)
    env.single_observation_space = space
    return env


@pytest.mark.parametrize("args, error", [
    (["env.factory=nosuch.module:make"],
     "env.factory: factory nosuch.module:make: cannot import nosuch.module (No module named "
     "'nosuch'); the module must be installed or under the working directory"),
    (["env.factory=experiments.custom_env:nothing"],
     "env.factory: factory experiments.custom_env:nothing: experiments.custom_env has no "
     "function nothing"),
    (["env.factory=make"], "env.factory='make' must name a function as "
     "'package.module:function'."),
    ([f"env.factory={JAX}", "learner.loop=actor_learner"],
     f"env.factory: factory {JAX} takes no num_envs, so it makes a JaxEnv: train it with "
     "learner.loop=on_device (or auto)"),
    ([f"env.factory={HOST}", "learner.loop=on_device"],
     f"env.factory: factory {HOST} takes num_envs, so it makes host environments: train it "
     "with learner.loop=actor_learner (or auto)"),
])
def test_a_factory_that_cannot_be_used_is_a_one_line_error(tmp_path, args, error):
    completed = subprocess.run(
        [sys.executable, "-m", "gtrxl_jax.train", *args, f"run.log_dir={tmp_path}"],
        cwd=REPO, env=child_env(), capture_output=True, text=True, timeout=120)
    assert completed.returncode == 2, completed.stderr
    assert completed.stderr.strip().splitlines() == [f"gtrxl-train: error: {error}"]


@pytest.mark.slow
def test_a_custom_gymnasium_env_trains_from_its_config_file(tmp_path):
    """The example's config as a user runs it: CueRecall (delay 4) is solved in its budget
    (~80k of its 100k steps, ~30 s)."""
    summary = train_as_a_user(tmp_path, "--config", "experiments/configs/custom_env.py")
    assert summary["eval"]["greedy"]["episode_return"] >= 0.9, summary["eval"]


@pytest.mark.slow
def test_a_custom_jax_env_trains_on_device(tmp_path):
    """learner.loop=auto picks the on-device loop (the actor-learner one refuses a JaxEnv)."""
    summary = train_as_a_user(
        tmp_path, "--config", "experiments/configs/custom_env.py", f"env.factory={JAX}")
    assert summary["eval"]["greedy"]["success"] >= 0.9, summary["eval"]


def test_a_gymnasium_env_reports_success_from_its_info_when_asked():
    envs = gymnasium.vector.SyncVectorEnv([lambda: CueRecall(delay=0)] * 2)
    with GymnasiumVectorEnv(envs, task="mine", seed=1, has_success=True) as env:
        cues = env.reset().observation[:, :2].argmax(-1).astype(np.int32)
        env.step(np.asarray([cues[0], 1 - cues[1]], np.int32))  # the choice: one right
        assert [e.success for e in env.pop_episodes()] == [True, False]
        assert env.spec.has_success


class Count(gymnasium.Env):
    """Observes how many steps it has taken."""

    observation_space = gymnasium.spaces.Box(0, 100, (1,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.steps = 0
        return np.array([self.steps], np.float32), {}

    def step(self, action):
        self.steps += 1
        return np.array([self.steps], np.float32), 0.0, False, False, {}


@pytest.mark.parametrize("copy", [True, False])
@pytest.mark.parametrize("wrapped", [False, True])
def test_observations_outlive_the_next_step_of_a_vector_env_that_reuses_its_buffers(
        copy, wrapped):
    """With copy=False gymnasium returns its own buffer, overwritten by the next step; a
    trajectory that held it would see the newest observation at every step. A vector
    wrapper does not pass the env's `copy` through."""
    envs = gymnasium.vector.SyncVectorEnv([Count] * 2, copy=copy)
    if wrapped:
        envs = gymnasium.wrappers.vector.RecordEpisodeStatistics(envs)
    with GymnasiumVectorEnv(envs, task="mine") as env:
        held = [env.reset().observation] + [env.step(np.zeros(2, np.int32)).observation
                                             for _ in range(3)]
    assert [h[:, 0].tolist() for h in held] == [[0, 0], [1, 1], [2, 2], [3, 3]]
