"""Checkpoints that cannot be resumed from: missing, partial, corrupt, not a checkpoint, or
from another model. Each is refused with a message that says what is wrong (naming the
config keys and arrays that differ), before the learner compiles anything, and changes
nothing in the run folder."""

import os
from pathlib import Path

import numpy as np
import optax
import pytest

from gtrxl_jax.config import TrainConfig
from gtrxl_jax.losses import popart_init
from gtrxl_jax.train.checkpoint import Checkpointer, CheckpointError, Progress
from gtrxl_jax.train.cli import main
from gtrxl_jax.train.learning import LearnerState
from gtrxl_jax.train.loop import train
from gtrxl_jax.train.placement import Learner
from tests.reliability.helpers import (
    checkpoint_updates,
    partial_checkpoints,
    quick_config,
    train_command,
)


def snapshot(folder):
    """Every file under a folder with its size and modification time, and every folder.

    orbax's partial checkpoints are left out: opening the folder deletes them, as nothing
    can ever resume from them (which changes their parent's modification time, so folders
    are listed without theirs).
    """
    files = {}
    for parent, folders, names in os.walk(folder):
        folders[:] = [name for name in folders if ".orbax-checkpoint-tmp" not in name]
        for name in folders:
            files[str((Path(parent) / name).relative_to(folder))] = "folder"
        for path in (Path(parent) / name for name in names):
            files[str(path.relative_to(folder))] = (path.stat().st_size, path.stat().st_mtime_ns)
    return files


@pytest.fixture
def no_compiling(monkeypatch):
    """Fail the test if the learner builds its state (the first compile) before refusing."""
    def init_state(self, key):
        raise AssertionError("the learner compiled before the checkpoint was checked")
    monkeypatch.setattr(Learner, "init_state", init_state)


def refuse_resume(log_dir, *overrides: str, match: str) -> None:
    """Resume in log_dir; assert a CheckpointError matching `match` and an unchanged folder."""
    before = snapshot(log_dir) if log_dir.exists() else None
    with pytest.raises(CheckpointError, match=match):
        train(quick_config(log_dir, "run.resume=true", *overrides))
    assert (snapshot(log_dir) if log_dir.exists() else None) == before


def test_resuming_without_a_checkpoint_exits_1_and_creates_nothing(tmp_path, capsys):
    log_dir = tmp_path / "run"
    assert main(train_command(log_dir, "run.resume=true")[3:]) == 1
    assert "holds no complete checkpoint to resume from" in capsys.readouterr().err
    assert not log_dir.exists()


def test_only_partial_checkpoints_are_not_resumed_from(copy_run, no_compiling):
    for update in (2, 4):  # as if both saves had been cut short
        (copy_run / "checkpoints" / str(update)).rename(
            copy_run / "checkpoints" / f"{update}.orbax-checkpoint-tmp")
    refuse_resume(copy_run, match="holds no complete checkpoint to resume from")


def test_opening_the_folder_deletes_partial_checkpoints_before_returning(copy_run):
    # orbax deletes them in a thread; one still deleting at the interpreter's exit (a run that
    # stopped before saving) printed a traceback after the run's error. Gone on return means
    # the clean-up has finished (idle pool threads of orbax's are harmless).
    (copy_run / "checkpoints" / "4").rename(copy_run / "checkpoints" / "4.orbax-checkpoint-tmp")
    checkpointer = Checkpointer(str(copy_run), keep=2)
    assert partial_checkpoints(copy_run) == []
    assert checkpointer.latest_update() == 2
    checkpointer.close()


def test_a_fresh_run_in_a_folder_with_checkpoints_is_refused(copy_run, no_compiling):
    with pytest.raises(CheckpointError, match=r"already holds checkpoints \(latest: update 4\)"
                                              r".*Set run.resume=true"):
        train(quick_config(copy_run))


def test_a_checkpoint_of_another_model_names_the_keys_that_differ(copy_run, no_compiling):
    refuse_resume(copy_run, "agent.transformer.d_model=32", "env.task=TMaze-L5",
                  "optimizer.name=rmsprop",
                  match=r"different model config; these keys differ:\n"
                        r"  agent\.transformer\.d_model: 16 in the checkpoint, 32 now\n"
                        r"  env\.task: 'TMaze-L3' in the checkpoint, 'TMaze-L5' now\n"
                        r"  optimizer\.name: 'adam' in the checkpoint, 'rmsprop' now")


def test_a_linear_schedule_that_would_change_its_length_is_refused(tmp_path):
    """The optimiser's step count is restored: over a longer run the learning rate would
    jump from 0 back up, over a shorter one to 0."""
    log_dir = tmp_path / "run"
    linear = ("optimizer.schedule=linear", "agent.core=feedforward")
    train(quick_config(log_dir, *linear, "learner.total_env_steps=64"))  # 2 updates
    refuse_resume(log_dir, *linear, "learner.total_env_steps=128",
                  match=r"decays over 2 optimiser steps in the checkpoint's run and over 4 in "
                        r"this config")
    refuse_resume(log_dir, *linear, "learner.total_env_steps=64", "learner.batch_size=2",
                  "env.num_envs=2", match="decays over 2 optimiser steps in the checkpoint's "
                                          "run and over 4")
    assert train(quick_config(log_dir, *linear, "learner.total_env_steps=64",
                              "run.resume=true")).update == 2  # the same length resumes


def test_a_different_optimiser_state_structure_is_named_not_an_orbax_error(copy_run):
    # Clipping adds a state to the optimiser: the saved state has one element fewer.
    refuse_resume(copy_run, "optimizer.max_grad_norm=none",
                  match=r"does not fit this run's:\n"
                        r"  opt_state/0: \d+ arrays differ, e\.g\. opt_state/0/count: absent in "
                        r"the checkpoint, int32\[\] now\n"
                        r"  opt_state/1: \d+ arrays differ, e\.g\. opt_state/1/0/count: int32\[\] "
                        r"in the checkpoint, absent now\n"
                        r"Config keys that differ from the checkpoint's:\n"
                        r"  optimizer\.max_grad_norm: 40\.0 in the checkpoint, None now\n"
                        r"Resume with the checkpoint's values")


def test_arrays_of_other_shapes_are_named(tmp_path):
    def state(width):
        params = {"core": {"w": np.ones((width, 2), np.float32)}}
        return LearnerState(params=params, opt_state=optax.sgd(0.1).init(params),
                            popart=popart_init(1), update=np.int32(1),
                            nonfinite_updates=np.int32(0), rng=np.zeros(2, np.uint32))

    checkpointer = Checkpointer(str(tmp_path), keep=1)
    checkpointer.save(state(3), TrainConfig(), Progress(env_steps=10, wall_clock_s=1.0))
    with pytest.raises(CheckpointError, match=r"params/core/w: float32\[3, 2\] in the "
                                              r"checkpoint, float32\[5, 2\] now"):
        checkpointer.restore(state(5), TrainConfig())
    checkpointer.close()


def test_a_corrupt_checkpoint_is_refused_pointing_at_the_earlier_one(copy_run):
    for path in (copy_run / "checkpoints" / "4" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\0garbage")
    refuse_resume(copy_run, match=r"Cannot read the learner state's metadata in .*/4: .*not a "
                                  r"complete checkpoint.*Move it away to resume from update 2")


def test_corrupt_metadata_is_refused(copy_run, no_compiling):
    (copy_run / "checkpoints" / "4" / "meta" / "metadata").write_text("{not json")
    refuse_resume(copy_run, match=r"Cannot read the checkpoint's metadata in .*/4: "
                                  r"JSONDecodeError")


def test_a_folder_that_is_not_a_checkpoint_is_refused(copy_run, no_compiling):
    (copy_run / "checkpoints" / "7").mkdir()
    (copy_run / "checkpoints" / "7" / "notes.txt").write_text("not a checkpoint")
    refuse_resume(copy_run, match=r"Cannot read the checkpoint's metadata in .*/7: .*not a "
                                  r"complete checkpoint.*Move it away to resume from update 4")


def test_a_checkpoints_file_instead_of_a_folder_is_refused(tmp_path, no_compiling):
    (tmp_path / "checkpoints").write_text("not a folder")
    refuse_resume(tmp_path, match="checkpoints is not a folder of checkpoints")


def test_after_moving_the_corrupt_one_away_the_run_resumes_from_the_earlier_one(copy_run):
    for path in (copy_run / "checkpoints" / "4" / "state").rglob("*"):
        if path.is_file():
            path.write_bytes(b"\0garbage")
    (copy_run / "checkpoints" / "4").rename(copy_run / "corrupt-4")
    result = train(quick_config(copy_run, "run.resume=true"))
    assert (result.update, result.env_steps) == (4, 128)
    assert checkpoint_updates(copy_run) == [2, 4]
