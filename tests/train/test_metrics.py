"""The actors' telemetry in the metrics records (ActorMonitor)."""

import types

import pytest

from gtrxl_jax.train import metrics
from gtrxl_jax.train.actor import ActorStats
from gtrxl_jax.train.metrics import ActorMonitor


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
