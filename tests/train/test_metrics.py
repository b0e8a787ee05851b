"""The metrics records: the learner's interval averages (MetricsLogger) and the actors'
telemetry (ActorMonitor)."""

import math
import types

import pytest

from gtrxl_jax.config import TrainConfig
from gtrxl_jax.train import metrics
from gtrxl_jax.train.actor import ActorStats
from gtrxl_jax.train.metrics import ActorMonitor, MetricsLogger


def test_actor_sps_covers_at_least_its_window_when_records_come_faster(monkeypatch):
    """Records 0.5 s apart get actor_sps over the last 2 s; records 3 s apart, over their own
    interval. The counters jump once a second, as an actor process's reports might."""
    clock = [100.0]
    monkeypatch.setattr(metrics.time, "monotonic", lambda: clock[0])
    actor = types.SimpleNamespace(stats=ActorStats())
    monitor = ActorMonitor([actor], [])
    sps = []
    for steps in (0, 1000, 1000, 1000, 3000, 3000):  # a report every 1 s, read every 0.5 s
        clock[0] += 0.5
        actor.stats = ActorStats(env_steps=steps)
        sps.append(monitor.read()["actor_sps"])
    # The first read counts from the start; until 2 s have passed, the rest count from the
    # first read; then over the latest 2 s or more.
    assert sps == pytest.approx([0, 1000 / 0.5, 1000 / 1, 1000 / 1.5, 3000 / 2, 2000 / 2])
    clock[0] += 3.0
    actor.stats = ActorStats(env_steps=9000)
    assert monitor.read()["actor_sps"] == pytest.approx(6000 / 3)


def test_actor_sps_repeats_its_last_figure_until_a_report_comes_and_then_shows_a_stall(
        monkeypatch):
    """A read too soon after the first to see a new report keeps the first figure (a 0 would
    read as a stall); an actor that really stops shows 0 once the window has passed."""
    clock = [100.0]
    monkeypatch.setattr(metrics.time, "monotonic", lambda: clock[0])
    actor = types.SimpleNamespace(stats=ActorStats())
    monitor = ActorMonitor([actor], [])
    sps = []
    for seconds, steps in ((1.0, 1000), (0.1, 1000), (0.4, 1500), (2.5, 1500)):
        clock[0] += seconds
        actor.stats = ActorStats(env_steps=steps)
        sps.append(monitor.read()["actor_sps"])
    assert sps == pytest.approx([1000 / 1, 1000 / 1, 500 / 0.5, 0])


def test_a_skipped_update_leaves_the_interval_mean_of_the_others(tmp_path):
    """One skipped update of three (NaN loss) leaves the loss's mean over the two kept, and
    the share skipped shows in nonfinite_loss; an interval of skipped updates has NaN."""
    logger = MetricsLogger(str(tmp_path), TrainConfig(), tasks=("t",), has_success=False,
                           start_env_steps=0, enabled=False)
    for loss, skipped in ((1.0, 0.0), (math.nan, 1.0), (3.0, 0.0)):
        logger.add_update({"loss": loss, "grad_norm": 1.0 + skipped, "nonfinite_loss": skipped},
                          {}, env_steps=0)
    record = logger.write(update=3, env_steps=0, extra={})
    assert (record["loss"], record["grad_norm"]) == (2.0, 1.0)
    assert record["nonfinite_loss"] == pytest.approx(1 / 3)
    logger.add_update({"loss": math.nan, "nonfinite_loss": 1.0}, {}, env_steps=0)
    record = logger.write(update=4, env_steps=0, extra={})
    assert math.isnan(record["loss"]) and record["nonfinite_loss"] == 1.0
