"""Checkpoints: a round trip, and which config keys must agree to resume.

The fault tests (missing, partial, corrupt, another model) are in tests/reliability.
"""

import numpy as np
import optax
import pytest

from gtrxl_jax.config import TrainConfig, apply_overrides, config_differences, to_dict
from gtrxl_jax.losses import popart_init
from gtrxl_jax.train import checkpoint
from gtrxl_jax.train.checkpoint import (
    STATE_KEYS,
    Checkpointer,
    CheckpointError,
    Progress,
    progress_of,
)
from gtrxl_jax.train.learning import LearnerState


def make_state(update, seed=0):
    rng = np.random.default_rng(seed)
    params = {"core": {"w": rng.normal(size=(3, 2)).astype(np.float32)},
              "head": {"b": rng.normal(size=(2,)).astype(np.float32)}}
    return LearnerState(params=params, opt_state=optax.adam(1e-3).init(params),
                        popart=popart_init(1), update=np.int32(update),
                        nonfinite_updates=np.int32(1), rng=np.array([7, update], np.uint32))


def test_round_trip_keeps_the_latest_checkpoints(tmp_path):
    config = TrainConfig()
    checkpointer = Checkpointer(str(tmp_path), keep=2)
    for update in (2, 4, 6):
        checkpointer.save(make_state(update, seed=update), config,
                          Progress(env_steps=100 * update, wall_clock_s=1.5 * update))
    checkpointer.close()

    checkpointer = Checkpointer(str(tmp_path), keep=2)
    assert checkpointer.latest_update() == 6
    assert sorted(p.name for p in checkpointer.directory.iterdir()) == ["4", "6"]
    state, meta = checkpointer.restore(make_state(0, seed=99), config)
    checkpointer.close()
    assert meta["update"] == 6 and progress_of(meta) == Progress(600, 9.0)
    expected = make_state(6, seed=6)
    for name in ("params", "opt_state", "popart", "update", "nonfinite_updates", "rng"):
        np.testing.assert_equal(getattr(state, name), getattr(expected, name))
    assert type(state.opt_state[0]).__name__ == "ScaleByAdamState"


def test_a_checkpoint_without_its_training_time_counts_none_and_says_so(caplog):
    """Checkpoints written before the meta held wall_clock_s resume with 0 s behind them."""
    assert progress_of({"update": 3, "env_steps": 96}) == Progress(96, 0.0)
    assert "does not record the training time" in caplog.text


def test_only_state_keys_count_as_differences():
    base = TrainConfig()
    changed = apply_overrides(base, ["learner.total_env_steps=10", "run.seed=3",
                                     "loss.popart=true"])
    assert config_differences(to_dict(base), to_dict(changed), STATE_KEYS) == [
        "loss.popart: False in the checkpoint, True now"]


def test_a_checkpoint_from_before_a_model_key_existed_resumes(tmp_path, monkeypatch, caplog):
    """A key added to the config since counts at its default (which keeps the behaviour from
    before it): at that default it neither stops a resume nor reads as a changed setting; set
    otherwise it stops it, as a saved key with another value does."""
    config = TrainConfig()
    saved = to_dict(config)
    del saved["agent"]["transformer"]["learn_gate_bias"]
    monkeypatch.setattr(checkpoint, "to_dict", lambda _: saved)
    writer = Checkpointer(str(tmp_path), keep=1)
    writer.save(make_state(3), config, Progress(env_steps=300, wall_clock_s=1.0))
    writer.close()
    monkeypatch.undo()

    reader = Checkpointer(str(tmp_path), keep=1)
    with caplog.at_level("INFO", logger=checkpoint.__name__):
        state, meta = reader.restore(make_state(0, seed=5), config)
    assert meta["update"] == 3 and int(state.update) == 3
    assert "changed settings" not in caplog.text
    for override, difference in [
            ("agent.transformer.memory_len=7",
             "agent.transformer.memory_len: 32 in the checkpoint, 7 now"),
            ("agent.transformer.learn_gate_bias=true",
             "agent.transformer.learn_gate_bias: False in the checkpoint, True now")]:
        with pytest.raises(CheckpointError, match=difference):
            reader.read_meta(apply_overrides(config, [override]))
    reader.close()


@pytest.mark.parametrize("core, unread, read", [
    ("gtrxl", "agent.lstm.hidden_size=8", "agent.transformer.memory_len=7"),
    ("lstm", "agent.transformer.memory_len=7", "agent.lstm.hidden_size=8"),
    ("feedforward", "agent.transformer.memory_len=7", "agent.transformer.d_model=8"),
])
def test_a_resume_compares_only_the_agent_keys_its_core_reads(tmp_path, core, unread, read):
    """A setting of another core's section (agent.lstm for GTrXL) leaves the state as it is, so
    changing it does not stop a resume; the core's own settings still do."""
    config = apply_overrides(TrainConfig(), [f"agent.core={core}"])
    writer = Checkpointer(str(tmp_path), keep=1)
    writer.save(make_state(3), config, Progress(env_steps=300, wall_clock_s=1.0))
    writer.close()
    reader = Checkpointer(str(tmp_path), keep=1)
    assert reader.read_meta(apply_overrides(config, [unread]))["update"] == 3
    with pytest.raises(CheckpointError, match=read.split("=")[0]):
        reader.read_meta(apply_overrides(config, [read]))
    reader.close()


def test_a_resume_logs_its_changed_run_settings(tmp_path, caplog):
    """A run resumed with another seed (it seeds the environments made anew) says so."""
    config = TrainConfig()
    writer = Checkpointer(str(tmp_path), keep=1)
    writer.save(make_state(3), config, Progress(env_steps=300, wall_clock_s=1.0))
    writer.close()
    reader = Checkpointer(str(tmp_path), keep=1)
    with caplog.at_level("INFO", logger=checkpoint.__name__):
        reader.restore(make_state(0), apply_overrides(config, ["run.seed=3", "run.resume=true"]))
    reader.close()
    assert "run.seed: 0 in the checkpoint, 3 now" in caplog.text
    assert "run.resume" not in caplog.text
