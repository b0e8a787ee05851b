"""End-to-end runs of train(): logs, checkpoints, resuming, layouts, several actors and tasks.

Faults, bad input and reproducibility are tested in tests/reliability.
"""

import dataclasses
import json
import struct
import time

import pytest
from tensorboardX.proto.event_pb2 import Event, SessionLog

from gtrxl_jax.train.builder import check_config
from gtrxl_jax.train.loop import train
from gtrxl_jax.train.metrics import MetricsLogger
from tests.train.helpers import tiny_config


def read_metrics(log_dir):
    return [json.loads(line) for line in (log_dir / "metrics.jsonl").read_text().splitlines()]


def read_events(path) -> list[Event]:
    """The events of a TensorBoard file (TFRecords: length, its CRC, data, the data's CRC)."""
    data, offset, events = path.read_bytes(), 0, []
    while offset < len(data):
        (length,) = struct.unpack("<Q", data[offset:offset + 8])
        events.append(Event.FromString(data[offset + 12:offset + 12 + length]))
        offset += 12 + length + 4
    return events


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    log_dir = tmp_path_factory.mktemp("run_a")
    return log_dir, train(tiny_config(log_dir))


def test_a_short_run_writes_metrics_events_checkpoints_and_a_summary(first_run):
    log_dir, result = first_run
    assert (result.update, result.env_steps) == (4, 4 * 4 * 8)
    records = read_metrics(log_dir)
    assert [r["update"] for r in records] == [1, 2, 3, 4]
    for key in ("update", "env_steps", "sps", "episode_return", "success", "loss", "entropy",
                "grad_norm", "policy_lag_mean", "queue_depth", "learner_wait_s",
                "actor_wait_s"):
        assert key in records[-1], key
    assert [r["policy_lag_mean"] for r in records] == [0.0, 1.0, 1.0, 1.0]
    assert list(log_dir.glob("events.out.tfevents.*"))
    assert json.loads((log_dir / "config.json").read_text())["env"]["task"] == "TMaze-L3"
    summary = json.loads((log_dir / "summary.json").read_text())
    for mode in ("greedy", "sampled"):
        assert set(summary["eval"][mode]) >= {"episode_return", "success", "episodes"}
        assert summary["eval"][mode]["episodes"] == 4
    assert summary["env_steps"] == 128 and summary["sps"] > 0
    assert sorted(p.name for p in (log_dir / "checkpoints").iterdir()) == ["2", "4"]


def test_a_resumed_run_continues_from_its_last_checkpoint(first_run):
    log_dir, _ = first_run
    events_before = set(log_dir.glob("events.out.tfevents.*"))
    # resumed in free-running mode, which may change between runs
    result = train(tiny_config(log_dir, "run.resume=true", "learner.total_env_steps=192",
                               "learner.reproducible=false", "run.eval_episodes=0"))
    assert (result.update, result.env_steps) == (6, 192)
    records = read_metrics(log_dir)
    assert [r["update"] for r in records] == [1, 2, 3, 4, 5, 6]
    assert records[-1]["env_steps"] == 192
    assert "6" in {p.name for p in (log_dir / "checkpoints").iterdir()}
    # TensorBoard drops the stopped session's points after the checkpoint (128 env steps).
    (resumed_events,) = set(log_dir.glob("events.out.tfevents.*")) - events_before
    purges = [e.step for e in read_events(resumed_events)
              if e.HasField("session_log") and e.session_log.status == SessionLog.START]
    assert purges == [129]


def test_a_finished_run_resumed_keeps_its_last_metrics_in_its_summary(tmp_path):
    config = tiny_config(tmp_path, "learner.total_env_steps=64", "run.eval_episodes=0",
                         "agent.core=feedforward")
    train(config)
    last = read_metrics(tmp_path)[-1]
    result = train(dataclasses.replace(config, run=dataclasses.replace(config.run,
                                                                       resume=True)))
    assert result.update == 2 and result.metrics == last  # no update in this session
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["last_metrics"] == last


def test_a_fresh_start_drops_the_curves_of_an_attempt_that_left_no_checkpoint(tmp_path):
    """A run killed before its first checkpoint can only start again; its metrics.jsonl is
    rewritten, and TensorBoard must not show the killed attempt's points beside the new."""
    config = tiny_config(tmp_path)
    args = dict(tasks=("TMaze-L3",), has_success=True, start_env_steps=0)
    for attempt in (1, 2):
        logger = MetricsLogger(str(tmp_path), config, **args)
        logger.add_update({"loss": float(attempt)}, {}, env_steps=32)
        logger.write(1, 32, {})
        logger.close()
        time.sleep(1.1)  # event files are named by the second they were opened in
    (events,) = tmp_path.glob("events.out.tfevents.*")
    losses = [value.simple_value for event in read_events(events)
              for value in event.summary.value if value.tag == "loss"]
    assert losses == [2.0]
    assert [r["loss"] for r in read_metrics(tmp_path)] == [2.0]


def test_a_multi_task_layout_is_planned(tmp_path):
    layout, spec = check_config(tiny_config(tmp_path, "env.task=TMaze-L3,TMaze-L5",
                                            "env.groups_per_task=2", "learner.batch_size=8"))
    assert (layout.tasks, layout.envs_per_group, layout.trajectories_per_update) == (
        ("TMaze-L3", "TMaze-L5"), 1, 2)
    assert spec.has_success


def test_several_actor_threads_and_tasks_train_one_agent(tmp_path):
    config = tiny_config(tmp_path, "env.task=TMaze-L2,TMaze-L3", "env.groups_per_task=2",
                         "learner.num_actor_threads=2", "learner.batch_size=16",
                         "learner.total_env_steps=256", "run.eval_episodes=2")
    result = train(config)
    assert (result.update, result.env_steps) == (2, 256)
    record = read_metrics(tmp_path)[-1]
    assert record["episodes/TMaze-L2"] > 0 and "success/TMaze-L3" in record
    assert set(result.eval["greedy"]["tasks"]) == {"TMaze-L2", "TMaze-L3"}
