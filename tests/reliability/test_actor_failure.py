"""A failing or stalled side of the actor-learner loop brings the run down with its error
and a final checkpoint, instead of leaving the other side waiting: an environment that
crashes, an environment that hangs (the learner's wait times out), a learner that hangs
(the actor's wait times out). No actor thread is left running."""

import threading
import time

import pytest

from gtrxl_jax.train import loop
from gtrxl_jax.train.handoff import Stalled
from gtrxl_jax.train.placement import Learner
from tests.reliability.helpers import (
    checkpoint_updates,
    quick_config,
    read_metrics,
    use_faulty_envs,
)

RECVS_PER_UPDATE = 8  # quick_config: one recv per step, 8 steps per trajectory and update
STALL_S = 8.0  # the stall time-out in these tests (600 s in a real run)
LONG_RUN = "learner.total_env_steps=100000"


def actor_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("actor ")]


def assert_went_down_with_a_final_checkpoint(log_dir) -> int:
    """The run's last metrics record and its last checkpoint are of the same update."""
    last_update = read_metrics(log_dir)[-1]["update"]
    assert checkpoint_updates(log_dir)[-1] == last_update
    return last_update


def test_a_crashing_environment_ends_the_run_with_its_error_and_a_final_checkpoint(
        tmp_path, monkeypatch):
    use_faulty_envs(monkeypatch, fault="crash", after=5 * RECVS_PER_UPDATE)
    start = time.monotonic()
    with pytest.raises(OSError, match="environment crashed"):
        loop.train(quick_config(tmp_path, LONG_RUN, "run.checkpoint_interval_updates=1000"))
    print(f"the run went down {time.monotonic() - start:.1f} s after it started")
    assert assert_went_down_with_a_final_checkpoint(tmp_path) >= 3
    assert actor_threads() == []


@pytest.fixture
def short_stalls(monkeypatch, finished_run):
    """Stall time-outs of STALL_S; finished_run has filled the compilation cache, so no wait
    of the first updates is a compile's."""
    monkeypatch.setattr(loop, "STALL_TIMEOUT_S", STALL_S)
    monkeypatch.setattr(loop, "_ACTOR_JOIN_S", 1.0)


def test_a_hanging_environment_times_out_naming_the_actor(tmp_path, monkeypatch, short_stalls):
    release = threading.Event()
    use_faulty_envs(monkeypatch, fault="hang", after=5 * RECVS_PER_UPDATE, release=release)
    try:
        with pytest.raises(Stalled, match=r"The learner waited 8 s for a trajectory from "
                                          r"actor 0\.0: the actor stalled \(is an environment "
                                          r"hanging\?\)"):
            loop.train(quick_config(tmp_path, LONG_RUN))
    finally:
        release.set()  # lets the hung thread finish
    assert assert_went_down_with_a_final_checkpoint(tmp_path) >= 3


def test_a_hanging_learner_times_out_naming_the_learner(tmp_path, monkeypatch, short_stalls):
    update = Learner.update
    calls = []

    def hanging_update(self, state, batch):
        calls.append(1)
        if len(calls) == 4:
            time.sleep(STALL_S + 4)
        return update(self, state, batch)

    monkeypatch.setattr(Learner, "update", hanging_update)
    with pytest.raises(Stalled, match=r"actor 0\.0 waited 8 s for parameters version 4: the "
                                      r"learner stalled \(latest published: 3\)"):
        loop.train(quick_config(tmp_path, LONG_RUN))
    assert assert_went_down_with_a_final_checkpoint(tmp_path) == 4
    assert actor_threads() == []
