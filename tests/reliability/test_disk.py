"""A full disk or an unwritable folder: a clear error, and the training state stays intact
(the complete checkpoints are untouched, a partial one is never read)."""

import errno
import os
import tempfile
from pathlib import Path

import jax
import numpy as np
import orbax.checkpoint as ocp
import pytest

from gtrxl_jax.train import loop
from gtrxl_jax.train.checkpoint import Checkpointer, CheckpointError
from gtrxl_jax.train.cli import main
from gtrxl_jax.train.metrics import MetricsWriteError
from tests.reliability.helpers import (
    checkpoint_updates,
    partial_checkpoints,
    quick_config,
    train_command,
)


def saved_params(log_dir, update):
    state = ocp.StandardCheckpointer().restore(log_dir / "checkpoints" / str(update) / "state")
    return state["params"]


def assert_finite(tree) -> None:
    assert all(np.all(np.isfinite(leaf)) for leaf in jax.tree.leaves(tree))


def test_a_log_dir_under_a_file_is_refused_before_any_work(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    log_dir = tmp_path / "file" / "run"
    assert main(train_command(log_dir)[3:]) == 2
    assert f"run.log_dir='{log_dir}' cannot be a folder: {tmp_path / 'file'} is a file" in \
        capsys.readouterr().err


def test_an_unwritable_log_dir_is_refused_before_any_work(tmp_path, capsys, monkeypatch):
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: show the check what any other user would see
        mkdtemp = tempfile.mkdtemp

        def refuse(*args, dir=None, **kwargs):
            if Path(dir) == folder:
                raise PermissionError(errno.EACCES, os.strerror(errno.EACCES))
            return mkdtemp(*args, dir=dir, **kwargs)

        monkeypatch.setattr(tempfile, "mkdtemp", refuse)
    try:
        assert main(train_command(folder / "run")[3:]) == 2
    finally:
        folder.chmod(0o755)
    assert f"making a folder in {folder} failed (Permission denied)" in capsys.readouterr().err
    assert list(folder.iterdir()) == []


def test_a_log_dir_it_cannot_make_is_refused_even_for_root(capsys):
    """/proc refuses new folders to every user, root included, whatever its permissions say."""
    assert main(train_command("/proc/gtrxl_run")[3:]) == 2
    err = capsys.readouterr().err
    assert "run.log_dir='/proc/gtrxl_run' cannot be written: making a folder in /proc " \
           "failed" in err and "Traceback" not in err


def test_a_full_disk_under_the_metrics_stops_the_run_after_a_final_checkpoint(tmp_path):
    (tmp_path / "metrics.jsonl").symlink_to("/dev/full")  # every write: ENOSPC
    with pytest.raises(MetricsWriteError, match=r"Cannot write .*metrics.jsonl: \[Errno 28\] "
                                                r"No space left on device\. Free disk space"):
        loop.train(quick_config(tmp_path))
    assert checkpoint_updates(tmp_path) == [1]  # the first record failed: update 1
    assert_finite(saved_params(tmp_path, 1))


def test_a_full_disk_under_the_checkpoints_stops_the_run_and_keeps_the_complete_ones(
        tmp_path, monkeypatch):
    save = ocp.JsonCheckpointHandler._save_fn
    calls = []

    async def fill_up(self, item, directory):  # the second save's metadata does not fit
        calls.append(directory)
        if len(calls) > 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(directory / "metadata"))
        return await save(self, item, directory)

    monkeypatch.setattr(ocp.JsonCheckpointHandler, "_save_fn", fill_up)
    with pytest.raises(CheckpointError, match=r"Writing the checkpoint of update 4 to .* failed: "
                                              r"OSError: \[Errno 28\] No space left on device.*"
                                              r"The complete checkpoints there \(\[2\]\) are "
                                              r"intact.*run\.resume=true"):
        loop.train(quick_config(tmp_path, "learner.total_env_steps=100000"))
    monkeypatch.undo()
    assert checkpoint_updates(tmp_path) == [2]
    assert partial_checkpoints(tmp_path) == ["4.orbax-checkpoint-tmp"]
    checkpointer = Checkpointer(str(tmp_path), keep=3)
    assert checkpointer.latest_update() == 2  # a resumed run starts from update 2
    checkpointer.close()
    assert_finite(saved_params(tmp_path, 2))
