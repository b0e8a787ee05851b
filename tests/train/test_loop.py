"""End-to-end runs of train(): logs, checkpoints, resuming, layouts, several actors and tasks.

Faults, bad input and reproducibility are tested in tests/reliability.
"""

import json
import struct

import pytest
from tensorboardX.proto.event_pb2 import Event, SessionLog

from gtrxl_jax.train.builder import check_config
from gtrxl_jax.train.loop import train
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
