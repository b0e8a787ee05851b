"""Multi-task training with PopArt per task (Hessel et al. 2018): one value output per task,
selected by each environment's task id, with its own statistics."""

import json

import jax
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from gtrxl_jax.agent import Agent
from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.config import LossConfig
from gtrxl_jax.envs.episodes import Episode
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train import evaluation
from gtrxl_jax.train.checkpoint import Checkpointer, CheckpointError
from gtrxl_jax.train.learning import Learning
from gtrxl_jax.train.loop import train
from gtrxl_jax.train.placement import Learner, first_replica
from tests.train.helpers import tiny_config

T, B, N = 6, 4, 3
AGENT = Agent(jax.ShapeDtypeStruct((3,), np.float32), 2,
              GTrXLConfig(num_layers=1, d_model=16, num_heads=2, memory_len=4), num_tasks=N)
TASK_IDS = np.array([0, 0, 1, 1], np.int32)  # task 2 is absent from the batch


def multitask_batch():
    """A random batch whose task-1 rows earn rewards 100x larger than task 0's."""
    batch = random_trajectory(AGENT, T, B)
    batch.inputs.prev_reward[:, TASK_IDS == 1] *= 100.0
    return batch.replace(task_id=TASK_IDS)


def make_learner(optimizer, popart):
    return Learner(Learning(AGENT, LossConfig(popart=popart), optimizer, num_tasks=N),
                   jax.local_devices()[:1], trajectory_len=T)


@pytest.fixture(scope="module")
def pop_only_learner():
    """A zero learning rate: the parameters change only by PopArt's POP rescaling."""
    return make_learner(optax.sgd(0.0), popart=True)


def update_once(learner, batch):
    state = learner.init_state(jax.random.PRNGKey(0))
    new_state, metrics = learner.update(learner.replicate(state), batch)
    return state, learner.unreplicate(new_state), jax.device_get(first_replica(metrics))


def unnormalised_values(params, popart, batch):
    """Every task's value in return units, [T+1, B, N]: sigma_i n_i(x) + mu_i."""
    outputs, _ = AGENT.unroll(params, batch.inputs, batch.core_state)
    return np.asarray(popart.scale) * np.asarray(outputs.values) + np.asarray(popart.shift)


def test_the_learners_popart_step_moves_each_tasks_statistics_and_preserves_every_output(
        pop_only_learner):
    batch = multitask_batch()
    state, new_state, metrics = update_once(pop_only_learner, batch)
    assert metrics["nonfinite_loss"] == 0.0
    old, new = state.popart, new_state.popart
    assert new.shift.shape == (N,)
    assert new.shift[0] != old.shift[0] and new.shift[1] != old.shift[1]
    # Task 1's returns are 100x larger: its scale moves far more than task 0's.
    assert new.scale[1] - old.scale[1] > 100.0 * abs(new.scale[0] - old.scale[0])
    for field in ("shift", "scale", "second_moment"):  # the absent task's do not move
        assert getattr(new, field)[2] == getattr(old, field)[2], field
    for i in range(N):  # each task's statistics are logged under its task id
        assert (metrics[f"popart_mu/{i}"], metrics[f"popart_sigma/{i}"]) == (
            new.shift[i], new.scale[i])
    before = unnormalised_values(state.params, old, batch)
    after = unnormalised_values(new_state.params, new, batch)
    scale = np.abs(before).max(axis=(0, 1))
    np.testing.assert_allclose((after - before) / scale, 0.0, atol=1e-5)


def test_each_tasks_value_output_learns_only_from_its_own_rows():
    state, new_state, _ = update_once(make_learner(optax.sgd(0.1), popart=False),
                                      multitask_batch())
    kernel = state.params["head"]["params"]["value"]["kernel"]
    new_kernel = new_state.params["head"]["params"]["value"]["kernel"]
    changed = np.abs(new_kernel - kernel).max(axis=0) > 0
    np.testing.assert_array_equal(changed, [True, True, False])


def test_a_task_id_without_a_value_output_skips_the_update(pop_only_learner):
    batch = multitask_batch().replace(task_id=np.array([0, 1, 2, N], np.int32))
    state, new_state, metrics = update_once(pop_only_learner, batch)
    assert metrics["nonfinite_loss"] == 1.0
    np.testing.assert_array_equal(new_state.popart.shift, state.popart.shift)


@pytest.fixture(scope="module")
def multitask_run(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("multitask")
    config = tiny_config(log_dir, "env.task=TMaze-L2,TMaze-L5", "loss.popart=true",
                         "learner.batch_size=8", "env.num_envs=8",
                         "learner.total_env_steps=256", "run.eval_episodes=2")
    return log_dir, train(config)


def test_a_multitask_run_with_popart_trains_one_agent_and_scores_each_task(multitask_run):
    log_dir, result = multitask_run
    assert (result.update, result.env_steps) == (4, 256)
    assert result.params["head"]["params"]["value"]["kernel"].shape[-1] == 2
    for mode in ("greedy", "sampled"):
        assert set(result.eval[mode]["tasks"]) == {"TMaze-L2", "TMaze-L5"}
    saved = Checkpointer(str(log_dir), keep=3)
    latest = saved.latest_update()
    saved.close()
    state = ocp.StandardCheckpointer().restore(log_dir / "checkpoints" / str(latest) / "state")
    assert state["params"]["head"]["params"]["value"]["bias"].shape == (2,)
    assert state["popart"]["shift"].shape == (2,)
    assert np.all(state["popart"]["shift"] != 0.0)  # both tasks' statistics moved
    assert state["popart"]["shift"][0] != state["popart"]["shift"][1]  # each its own way
    last = json.loads((log_dir / "metrics.jsonl").read_text().splitlines()[-1])
    # Watched per task, named as the episode metrics name it.
    assert last["popart_sigma/TMaze-L2"] > 0.0 and last["popart_sigma/TMaze-L5"] > 0.0
    assert {"episode_return/TMaze-L2", "episode_return/TMaze-L5"} <= last.keys()


def test_a_checkpoint_of_another_task_list_is_refused_naming_the_tasks(multitask_run):
    log_dir, _ = multitask_run
    with pytest.raises(CheckpointError, match="env.task: 'TMaze-L2,TMaze-L5' in the checkpoint"):
        train(tiny_config(log_dir, "env.task=TMaze-L2", "loss.popart=true", "run.resume=true"))
    # A reordered list would swap the task ids, so it is a different model too.
    with pytest.raises(CheckpointError, match="env.task"):
        train(tiny_config(log_dir, "env.task=TMaze-L5,TMaze-L2", "loss.popart=true",
                          "learner.batch_size=8", "env.num_envs=8", "run.resume=true"))


def test_a_multi_task_evaluation_averages_over_all_tasks_episodes(monkeypatch):
    """A task cut short (fewer episodes) weighs by its episodes; one without success
    leaves the success rate to the tasks that report it, as training's metrics do."""
    episodes = {"A": [Episode(env_id=0, episode_return=1.0, length=10, success=True)] * 4,
                "B": [Episode(env_id=0, episode_return=0.0, length=4, success=None)] * 2}
    monkeypatch.setattr(evaluation, "play_task",
                        lambda agent, params, task, *args, **kwargs: episodes[task])
    result = evaluation.evaluate(None, None, ("A", "B"), 4, seed=0, modes=("greedy",))
    greedy = result["greedy"]
    assert greedy["episode_return"] == pytest.approx(4 / 6)
    assert greedy["episode_length"] == pytest.approx(48 / 6)
    assert greedy["success"] == 1.0 and greedy["episodes"] == 6
