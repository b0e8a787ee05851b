"""Periodic evaluation during training (run.eval_interval_updates), in both loops."""

import math

import pytest

from gtrxl_jax.config import ConfigError
from gtrxl_jax.train.evaluation import eval_metrics, evaluation_seed
from gtrxl_jax.train.loop import train
from tests.reliability.helpers import read_metrics
from tests.train.helpers import tiny_config

MODES = ("greedy", "sampled")


@pytest.mark.parametrize("loop", ["actor_learner", "on_device"])
def test_every_second_update_is_evaluated_into_its_own_record(tmp_path, loop):
    """Records are due every 3 updates; an evaluation adds the record of its update."""
    train(tiny_config(tmp_path, f"learner.loop={loop}", "run.eval_interval_updates=2",
                      "run.log_interval_updates=3"))
    records = {record["update"]: record for record in read_metrics(tmp_path)}
    assert sorted(records) == [2, 3, 4]
    assert not any(key.startswith("eval_") for key in records[3])
    for update in (2, 4):
        record = records[update]
        assert "loss" in record  # the training metrics of the same record
        for mode in MODES:
            assert record[f"eval_{mode}_episodes"] == 4  # tiny_config: run.eval_episodes=4
            assert record[f"eval_{mode}_episode_length"] == 5.0  # TMaze-L3: 5 actions
            success = record[f"eval_{mode}_success"]
            assert success in {i / 4 for i in range(5)}
            assert record[f"eval_{mode}_episode_return"] == success  # 1 for success, else 0


def test_evaluation_leaves_the_training_as_it_is(tmp_path):
    """Its environments and keys are its own: the losses equal those of a run without it."""
    def losses(log_dir, *overrides):
        train(tiny_config(log_dir, "learner.loop=on_device", "run.eval_episodes=4", *overrides))
        return [record["loss"] for record in read_metrics(log_dir)]

    assert losses(tmp_path / "with", "run.eval_interval_updates=1") == losses(tmp_path / "none")


def test_the_largest_seed_evaluates(tmp_path):
    """The evaluation environments' seed (the run's, offset) wraps within [0, 2**31), the
    range every environment takes, rather than failing the run after its training (both
    loops take it from `evaluation_seed`)."""
    assert all(0 <= evaluation_seed(seed) < 2**31 for seed in (0, 2**31 - 1_000_003, 2**31 - 1))
    result = train(tiny_config(tmp_path, "learner.loop=on_device", "run.eval_episodes=2",
                               f"run.seed={2**31 - 1}"))
    assert result.eval["greedy"]["episodes"] >= 2


def test_a_seed_out_of_range_is_a_config_error():
    with pytest.raises(ConfigError, match=r"run.seed must be in \[0, 2\*\*31\), got -1"):
        tiny_config("unused", "run.seed=-1")


def test_eval_metrics_flattens_modes_and_tasks():
    per_task = {"episode_return": 1.0, "episode_length": 5.0, "success": math.nan,
                "episodes": 4}
    results = {mode: {**per_task, "tasks": {"A": per_task, "B": per_task}} for mode in MODES}
    metrics = eval_metrics(results)
    assert metrics["eval_sampled_episode_return"] == 1.0
    assert metrics["eval_greedy_episodes/B"] == 4.0
    assert math.isnan(metrics["eval_greedy_success/A"])
    assert len(metrics) == 2 * 3 * 4  # modes x (all, A, B) x keys
