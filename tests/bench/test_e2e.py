"""The end-to-end measurement: its configs, its steady-state arithmetic and a tiny real run.

Timings are not checked, only that the figures are real and sane.
"""

import json

import pytest

from gtrxl_jax.bench import WORKLOADS, Session, run_measurements
from gtrxl_jax.bench.cli import main
from gtrxl_jax.bench.e2e import run_fields, steady_state, train_config
from gtrxl_jax.bench.workloads import EndToEnd

SHARES = ("learner_wait_share", "actor_params_wait_share", "actor_queue_wait_share")


def metrics_record(update, sps, learner_wait_s, actor_wait_s, actor_params_wait_s):
    """A metrics.jsonl record of one update of 100 env steps."""
    return {"update": update, "env_steps": 100 * update, "sps": sps,
            "learner_wait_s": learner_wait_s, "actor_wait_s": actor_wait_s,
            "actor_params_wait_s": actor_params_wait_s, "actor_sps": sps,
            "queue_depth": 1.0, "policy_lag_mean": 1.0}


def test_steady_state_leaves_out_the_warmup_and_weighs_updates_by_their_time():
    records = [
        metrics_record(1, 1.0, 50.0, 0.0, 0.0),  # compiles: left out
        metrics_record(2, 100.0, 0.5, 0.2, 0.1),  # 1 s
        metrics_record(3, 50.0, 0.5, 1.0, 0.8),  # 2 s
        metrics_record(4, 100.0, 0.0, 0.0, 0.0),  # 1 s
    ]
    figures = steady_state(records, warmup=1, actor_threads=2)
    assert figures["steady_updates"] == 3
    assert figures["steady_s"] == pytest.approx(4.0)
    assert figures["sps"] == pytest.approx(300 / 4.0)
    assert (figures["sps_min"], figures["sps_median"], figures["sps_max"]) == (50.0, 100.0, 100.0)
    assert figures["learner_wait_share"] == pytest.approx(1.0 / 4.0)
    assert figures["actor_params_wait_share"] == pytest.approx(0.9 / (4.0 * 2))
    assert figures["actor_queue_wait_share"] == pytest.approx(0.3 / (4.0 * 2))
    assert figures["idle_side"] == "learner"
    assert figures["learner_busy_median_s"] == pytest.approx(1.0)  # 0.5, 1.5, 1.0
    # 100 env steps an update: 5, 15 and 10 s per 1,000 frames.
    assert figures["learner_s_per_1k_frames"] == pytest.approx(10.0)


def test_steady_state_needs_one_record_per_update_and_updates_after_the_warmup():
    records = [metrics_record(u, 100.0, 0.0, 0.0, 0.0) for u in (1, 2, 3)]
    with pytest.raises(ValueError, match="one metrics record per update"):
        steady_state(records[::2], warmup=1, actor_threads=1)
    with pytest.raises(ValueError, match="leaves no update"):
        steady_state(records, warmup=3, actor_threads=1)


def test_train_config_takes_the_workload_core_and_keeps_the_measurement_settings(tmp_path):
    e2e = EndToEnd(env_steps=64, overrides=("run.seed=3", "run.log_dir=elsewhere"))
    session = Session(WORKLOADS["tiny"], e2e=e2e)
    gtrxl = train_config(session, "TMaze-L4", "gtrxl", str(tmp_path))
    assert gtrxl.agent.transformer == WORKLOADS["tiny"].core
    assert (gtrxl.learner.trajectory_len, gtrxl.learner.batch_size, gtrxl.env.num_envs) == (4, 2, 2)
    assert gtrxl.run.seed == 3 and gtrxl.run.log_dir == str(tmp_path)
    assert (gtrxl.run.log_interval_updates, gtrxl.run.eval_episodes) == (1, 0)
    assert run_fields(gtrxl)["layers"] == 2

    feedforward = run_fields(train_config(session, "TMaze-L4", "feedforward", str(tmp_path)))
    assert feedforward["core"] == "feedforward" and feedforward["d_model"] == 16
    assert "layers" not in feedforward


def test_e2e_refuses_a_budget_with_nothing_after_the_warmup():
    session = Session(WORKLOADS["tiny"], warmup=2, e2e=EndToEnd(tasks=("TMaze-L4",), env_steps=16))
    with pytest.raises(ValueError, match="none after the 2 warm-up"):
        run_measurements(session, ["e2e"], emit=lambda record: None)


def test_e2e_measures_a_tiny_training_run(tmp_path):
    # The feed-forward core compiles in seconds; the GTrXL config is checked above.
    out = tmp_path / "e2e.jsonl"
    args = ["--config", "tiny", "--only", "e2e", "--e2e-tasks", "TMaze-L4", "--e2e-cores",
            "feedforward", "--e2e-steps", "48", "--warmup", "2", "--e2e-set", "run.seed=3"]
    assert main([*args, "--out", str(out)]) == 0
    machine, record = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(machine["load_average"]) == 3
    assert (record["measurement"], record["task"], record["core"]) == (
        "e2e", "TMaze-L4", "feedforward")
    assert record["d_model"] == 16
    assert (record["unroll"], record["batch"], record["num_envs"]) == (4, 2, 2)
    assert record["overrides"] == ["run.seed=3"]
    # 48 steps of 4 x 2 per update: 6 updates, the first 2 left out.
    assert (record["env_steps"], record["updates"], record["steady_updates"]) == (48, 6, 4)
    assert record["sps_min"] <= record["sps_median"] <= record["sps_max"]
    assert all(record[f] > 0 for f in ("sps", "sps_min", "actor_sps_median", "steady_s",
                                       "learner_busy_median_s", "learner_s_per_1k_frames",
                                       "time_to_first_update_s"))
    assert record["time_to_first_update_s"] < record["train_s"]
    assert all(0.0 <= record[share] <= 1.0 for share in SHARES)
    assert record["idle_side"] in ("learner", "actors")
    assert record["load_avg_start"] >= 0 and record["load_avg_end"] >= 0
