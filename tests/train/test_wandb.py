"""The optional Weights & Biases sink (run.wandb=true), in wandb's offline mode."""

import json
import struct
import sys

import pytest

from gtrxl_jax.config import ConfigError
from gtrxl_jax.train.loop import train
from gtrxl_jax.train.metrics import MetricsLogger, WandbSink
from tests.train.helpers import tiny_config

_BLOCK = 32768  # wandb's run file: a 7-byte header, then a LevelDB log of 32 KiB blocks
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def read_wandb_records(path) -> list:
    """The protobuf Records of an offline run's `run-<id>.wandb` file."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data.startswith(b":W&B"), "not a wandb run file"
    records, parts, pos = [], [], 7
    while pos + 7 <= len(data):
        if _BLOCK - pos % _BLOCK < 7:  # a block's tail too short for a chunk header is padding
            pos += _BLOCK - pos % _BLOCK
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + 7])
        chunk, pos = data[pos + 7:pos + 7 + length], pos + 7 + length
        if kind in (_FULL, _FIRST):
            parts = [chunk]
        elif kind in (_MIDDLE, _LAST):
            parts.append(chunk)
        else:
            break  # zeros: the end of what was written
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            records.append(record)
    return records


def offline_run_files(wandb_dir) -> list:
    """The offline runs' `run-<id>.wandb` files under wandb_dir, once complete on disk.

    `run.finish()` may return before wandb's service process has written all of a run's file
    (CI once read a file without its run record), so this first shuts the service down, as
    the end of a training process does (wandb's atexit hook); that waits for every file.
    """
    import wandb

    wandb.teardown()
    return sorted((wandb_dir / "wandb").glob("offline-run-*/run-*.wandb"))


def items(update) -> dict:
    """A history or summary record's items as {key: value}."""
    return {item.key or "/".join(item.nested_key): json.loads(item.value_json) for item in update}


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """wandb in offline mode, writing under tmp_path/wandb. wandb reads its environment once
    per process (its singleton), so the singleton is torn down before and after."""
    wandb = pytest.importorskip("wandb")
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(tmp_path))
    monkeypatch.setenv("WANDB_SILENT", "true")
    wandb.teardown()
    yield
    wandb.teardown()


def test_a_run_with_wandb_logs_its_config_records_and_summary_offline(tmp_path, offline_wandb):
    train(tiny_config(tmp_path / "run", "run.eval_episodes=0", "run.wandb=true"))

    (run_file,) = offline_run_files(tmp_path)
    records = read_wandb_records(run_file)
    (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
    assert run.display_name == "run"
    assert run.project == "gtrxl_jax"
    config = {item.key: json.loads(item.value_json) for item in run.config.update}
    assert config["env"]["task"] == "TMaze-L3"
    assert config["run"]["wandb"] is True

    history = [items(r.history.item) for r in records if r.WhichOneof("record_type") == "history"]
    assert [row["env_steps"] for row in history] == [32, 64, 96, 128]  # one per update
    for key in ("update", "loss", "entropy", "grad_norm", "sps", "queue_depth"):
        assert all(key in row for row in history), key
    assert "time" not in history[0]
    summary = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary.update(items(record.summary.update))
    assert summary["updates"] == 4 and summary["env_steps"] == 128
    assert summary["last_metrics"]["update"] == 4


def test_runs_of_one_process_each_log_to_a_w_and_b_run_of_their_own(tmp_path, offline_wandb):
    """Seeds trained together (`train_seeds`) each have a MetricsLogger, so a W&B sink
    each, alive at once in one process: neither may join or finish the other's run."""
    sinks = {name: WandbSink(tiny_config(tmp_path / name, "run.wandb=true"))
             for name in ("seed0", "seed1")}
    for steps, sink in enumerate(sinks.values(), start=1):
        sink.write({"env_steps": steps, "loss": float(steps)})
    for sink in sinks.values():
        sink.close()

    logged = {}
    for run_file in offline_run_files(tmp_path):
        records = read_wandb_records(run_file)
        (run,) = [r.run for r in records if r.WhichOneof("record_type") == "run"]
        logged[run.display_name] = [items(r.history.item)["loss"] for r in records
                                    if r.WhichOneof("record_type") == "history"]
    assert logged == {"seed0": [1.0], "seed1": [2.0]}


def test_without_the_wandb_package_asking_for_it_is_a_config_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    logger_args = dict(tasks=("TMaze-L3",), has_success=True, start_env_steps=0)
    MetricsLogger(str(tmp_path / "off"), tiny_config(tmp_path / "off"), **logger_args).close()

    log_dir = tmp_path / "on"
    with pytest.raises(ConfigError, match=r"run.wandb=true needs the wandb package.*"
                                          r"pip install wandb"):
        MetricsLogger(str(log_dir), tiny_config(log_dir, "run.wandb=true"), **logger_args)
    assert not log_dir.exists()


@pytest.mark.parametrize("project", ["", "team/project", "a:b"])
def test_a_wandb_project_name_wandb_refuses_is_a_config_error(project, tmp_path):
    with pytest.raises(ConfigError, match="run.wandb_project must be a non-empty name"):
        tiny_config(tmp_path, f"run.wandb_project={project}")
