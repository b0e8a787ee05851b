import threading
import time

import pytest

from gtrxl_jax.train.handoff import ParamsStore, Stalled, Stopped, TrajectoryQueue


def test_params_store_returns_the_exact_version_asked_for():
    store = ParamsStore(keep=3)
    stop = threading.Event()
    for version in range(4):
        store.publish(version, f"params{version}")
    assert store.wait_latest(stop, 1.0, "actor")[:2] == (3, "params3")
    assert store.wait_for(2, stop, 1.0, "actor")[0] == "params2"
    with pytest.raises(RuntimeError, match="already dropped"):
        store.wait_for(0, stop, 1.0, "actor")


def test_params_store_waits_for_a_version_published_later():
    store = ParamsStore()
    store.publish(0, "p0")
    threading.Timer(0.2, store.publish, (1, "p1")).start()
    params, waited = store.wait_for(1, threading.Event(), 5.0, "actor 0")
    assert params == "p1" and waited > 0.1


def test_a_missing_version_times_out_naming_the_learner():
    store = ParamsStore()
    store.publish(0, "p0")
    with pytest.raises(Stalled, match="actor 0 waited .* for parameters version 1: the learner"):
        store.wait_for(1, threading.Event(), 0.3, "actor 0")


def test_a_free_running_actor_waits_for_the_first_version():
    """An actor process's store is empty until the learner's first version comes down its
    pipe, and its actor may ask before that."""
    store = ParamsStore()
    threading.Timer(0.2, store.publish, (0, "p0")).start()
    version, params, waited = store.wait_latest(threading.Event(), 5.0, "actor 0")
    assert (version, params) == (0, "p0") and waited > 0.1
    empty = ParamsStore()
    with pytest.raises(Stalled, match="actor 0 waited .* for the learner's first parameters"):
        empty.wait_latest(threading.Event(), 0.3, "actor 0")
    with pytest.raises(Stalled, match=r"the learner stalled \(latest published: none\)"):
        empty.wait_for(0, threading.Event(), 0.3, "actor 0")


def test_queue_time_outs_say_which_side_stalled():
    queue = TrajectoryQueue(1, "actor 3")
    stop = threading.Event()
    with pytest.raises(Stalled, match="from actor 3: the actor stalled"):
        queue.get(stop, 0.3)
    queue.put("t0", stop, 1.0)
    with pytest.raises(Stalled, match="actor 3 waited .* the learner stalled"):
        queue.put("t1", stop, 0.3)


def test_waits_end_promptly_when_the_run_stops():
    queue = TrajectoryQueue(1, "actor 0")
    stop = threading.Event()
    threading.Timer(0.2, stop.set).start()
    start = time.monotonic()
    with pytest.raises(Stopped):
        queue.get(stop, 60.0)
    assert time.monotonic() - start < 2.0


def test_a_failing_actor_ends_the_learner_wait_with_its_error():
    def alive():
        raise OSError("env crashed")

    with pytest.raises(OSError, match="env crashed"):
        TrajectoryQueue(1, "actor 0").get(threading.Event(), 60.0, alive=alive)
