"""Reproducibility: the same seed and config give the same learner updates on one machine.

Deterministic: the learner's update on a fixed batch, a whole run in reproducible mode
(learner.reproducible=true), and a run resumed from a given checkpoint (which differs from
the run that was never stopped: its environments restart with new seeds). Not deterministic
(docs/reliability.md, "What is and is not deterministic"): free-running mode, and timing
figures such as sps and wait times.
"""

import shutil

import jax
import numpy as np
import optax

from gtrxl_jax.agent import Agent
from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.config import LossConfig
from gtrxl_jax.nn import GTrXLConfig
from gtrxl_jax.train.learning import Learning
from gtrxl_jax.train.loop import train
from gtrxl_jax.train.placement import Learner, first_replica
from tests.reliability.helpers import quick_config, read_metrics

T, B = 6, 4


def assert_equal_trees(a, b) -> None:
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


def test_the_update_on_a_fixed_batch_is_the_same_bit_for_bit():
    def updated():
        agent = Agent(jax.ShapeDtypeStruct((3,), np.float32), 2,
                      GTrXLConfig(num_layers=1, d_model=16, num_heads=2, memory_len=4))
        learner = Learner(Learning(agent, LossConfig(), optax.adam(1e-3), segment_len=3),
                          jax.local_devices(), trajectory_len=T)
        state = learner.replicate(learner.init_state(jax.random.PRNGKey(7)))
        metrics = []
        for seed in range(3):
            state, m = learner.update(state, random_trajectory(agent, T, B, seed=seed))
            metrics.append(jax.device_get(first_replica(m)))
        return learner.unreplicate(state), metrics

    (state_a, metrics_a), (state_b, metrics_b) = updated(), updated()
    assert_equal_trees(state_a, state_b)
    assert metrics_a == metrics_b


def test_a_reproducible_run_repeats_every_update_for_the_same_seed(finished_run, tmp_path):
    log_dir, result = finished_run
    again = train(quick_config(tmp_path))

    def learning(folder):
        return [(r["loss"], r["grad_norm"], r["entropy"], r["episode_return"])
                for r in read_metrics(folder)]

    assert learning(tmp_path) == learning(log_dir)
    assert_equal_trees(again.params, result.params)


def test_a_resumed_run_is_reproducible_but_not_the_uninterrupted_run(finished_run, tmp_path):
    log_dir, result = finished_run

    def resumed_from_update_2(name):
        folder = tmp_path / name
        shutil.copytree(log_dir, folder)
        shutil.rmtree(folder / "checkpoints" / "4")
        resumed = train(quick_config(folder, "run.resume=true"))
        return [(r["loss"], r["grad_norm"]) for r in read_metrics(folder)[2:]], resumed.params

    (learning_a, params_a), (learning_b, params_b) = (resumed_from_update_2("a"),
                                                      resumed_from_update_2("b"))
    assert learning_a == learning_b
    assert_equal_trees(params_a, params_b)
    assert learning_a != [(r["loss"], r["grad_norm"]) for r in read_metrics(log_dir)[2:]]
