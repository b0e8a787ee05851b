"""The on-device measurement: its configs, its time-to-solve arithmetic and a tiny real run.

Timings are not checked, only that the figures are real and sane.
"""

import json

import pytest

from gtrxl_jax.bench import WORKLOADS, Session
from gtrxl_jax.bench.cli import build_parser, main, make_on_device
from gtrxl_jax.bench.e2e import LoggedRun
from gtrxl_jax.bench.on_device import path_config, time_to_solve
from gtrxl_jax.bench.workloads import OnDeviceComparison

# The tiniest GTrXL on the main job's T-maze; actor threads, not a process, to start fast.
TINY = ("agent.transformer.num_layers=1", "agent.transformer.d_model=16",
        "agent.transformer.num_heads=2", "agent.transformer.memory_len=8",
        "env.num_envs=4", "learner.batch_size=4", "learner.trajectory_len=8",
        "learner.actor_processes=false")
TIMING_FIELDS = {"median_s", "min_s", "max_s", "cpu_median_s", "repeats"}


def logged_run(successes, start=100.0):
    """A LoggedRun whose update u (1, 2, ...) logged success successes[u-1] at start + u s."""
    records = [{"update": u, "env_steps": 32 * u, "time": start + u, "success": s}
               for u, s in enumerate(successes, start=1)]
    return LoggedRun(config=None, result=None, records=records, start=start, train_s=0.0,
                     load_avg_start=0.0, load_avg_end=0.0)


def test_time_to_solve_is_the_first_record_at_95_percent_from_the_start():
    figures = time_to_solve(logged_run([None, 0.5, 0.96, 0.9, 1.0]))
    assert figures["solved"] and figures["seconds_to_95_includes_compile"]
    assert (figures["seconds_to_95"], figures["env_steps_to_95"], figures["update_to_95"]) == (
        3.0, 96, 3)
    assert (figures["final_success"], figures["best_success"]) == (1.0, 1.0)

    unsolved = time_to_solve(logged_run([None, 0.94, 0.5]))
    assert not unsolved["solved"]
    assert unsolved["seconds_to_95"] is unsolved["env_steps_to_95"] is None
    assert (unsolved["final_success"], unsolved["best_success"]) == (0.5, 0.94)
    assert time_to_solve(logged_run([None]))["best_success"] is None


def test_the_paths_train_the_main_jobs_config_with_the_budget_and_overrides():
    bench = OnDeviceComparison(env_steps=1024, overrides=("run.seed=3",))
    session = Session(WORKLOADS["tiny"], on_device=bench)
    actor_learner = path_config(session, "actor_learner", ["run.seed=4"])
    on_device = path_config(session, "on_device", [])
    assert (actor_learner.learner.loop, on_device.learner.loop) == ("auto", "on_device")
    assert actor_learner.learner.actor_processes and not on_device.learner.actor_processes
    assert actor_learner.env.task == on_device.env.task == "TMaze-L16"
    assert actor_learner.agent == on_device.agent
    assert actor_learner.learner.total_env_steps == on_device.learner.total_env_steps == 1024
    assert (actor_learner.run.seed, on_device.run.seed) == (4, 3)
    main_budget = path_config(Session(WORKLOADS["tiny"]), "on_device", [])
    assert main_budget.learner.total_env_steps == 500_000
    with pytest.raises(ValueError, match="not 'on_device'"):
        path_config(Session(WORKLOADS["tiny"], on_device=OnDeviceComparison(
            on_device_config=bench.actor_learner_config)), "on_device", [])


def test_the_command_line_sets_the_budget_the_sweep_and_the_overrides():
    assert make_on_device(build_parser().parse_args([])) == OnDeviceComparison()
    args = build_parser().parse_args(["--on-device-steps", "2000", "--on-device-envs", "64,256",
                                      "--on-device-set", "run.seed=1"])
    assert make_on_device(args) == OnDeviceComparison(
        env_steps=2000, num_envs=(64, 256), overrides=("run.seed=1",))
    assert make_on_device(build_parser().parse_args(["--on-device-envs", ""])).num_envs == ()


def test_on_device_measures_both_paths_and_the_sweep(tmp_path, capsys):
    out = tmp_path / "on_device.jsonl"
    tiny = [arg for override in TINY for arg in ("--on-device-set", override)]
    # 96 env steps of 8 x 4 per update: 3 updates, the first left out. The sweep's one N is
    # the training run's, whose update the tests' compilation cache holds by then.
    args = ["--config", "tiny", "--only", "on_device", "--on-device-steps", "96",
            "--on-device-envs", "4", "--repeats", "2", "--warmup", "1", *tiny]
    assert main([*args, "--out", str(out)]) == 0
    machine, *records = [json.loads(line) for line in out.read_text().splitlines()]
    assert machine["kind"] == "machine"
    ceiling = next(r for r in records if r["measurement"] == "ceiling"
                   and r["shape"] == "square" and r["dtype"] == "float32")
    measured = [r for r in records if r["measurement"] == "on_device"]
    assert [(r["kind"], r["path"], r.get("num_envs")) for r in measured] == [
        ("throughput", "actor_learner", 4), ("time_to_solve", "actor_learner", 4),
        ("throughput", "on_device", 4), ("time_to_solve", "on_device", 4),
        ("num_envs", "on_device", 4)]
    for r in measured:
        assert r["ceiling_gflop_per_s"] == ceiling["gflop_per_s"]
        assert (r["task"], r["layers"], r["d_model"], r["unroll"]) == ("TMaze-L16", 1, 16, 8)
        assert isinstance(r["sps"], float) and r["sps"] > 0
    throughput = [r for r in measured if r["kind"] == "throughput"]
    solve = [r for r in measured if r["kind"] == "time_to_solve"]
    sweep = [r for r in measured if r["kind"] == "num_envs"]
    for r in throughput + solve:
        assert (r["env_steps"], r["updates"], r["env_steps_budget"]) == (96, 3, 96)
        assert r["overrides"] == list(TINY)
        assert 0 < r["time_to_first_update_s"] < r["train_s"]
    for r in throughput:
        assert r["steady_updates"] == 2 and r["warmup_updates"] == 1
        assert r["sps_min"] <= r["sps_median"] <= r["sps_max"] and r["steady_s"] > 0
    assert throughput[0]["sps_vs_actor_learner"] == 1.0
    assert throughput[1]["sps_vs_actor_learner"] == pytest.approx(
        throughput[1]["sps"] / throughput[0]["sps"])
    for r in solve:
        assert r["success_threshold"] == 0.95 and r["seconds_to_95_includes_compile"] is True
        assert isinstance(r["solved"], bool) and r["wall_clock_s"] > 0
        # A few tiny updates do not solve the maze; when they do, the figures are real.
        keys = ("seconds_to_95", "env_steps_to_95", "update_to_95")
        assert all((r[k] is not None) == r["solved"] for k in keys)
    (r,) = sweep
    assert (r["num_envs"], r["batch"]) == (4, 4) and "skipped" not in r
    assert TIMING_FIELDS <= r.keys() and r["repeats"] == 2 and r["compile_s"] > 0
    assert r["sps"] == pytest.approx(8 * 4 / r["median_s"]) and r["cpu_cores_busy"] > 0
    capsys.readouterr()
    assert main(["--summarize", str(out)]) == 0
    summary = capsys.readouterr().out.splitlines()
    assert summary[-2].startswith("on_device workload=tiny kind=time_to_solve path=on_device ")
    assert "x the actor-learner" in summary[-3] and "env steps/s" in summary[-1]


def test_on_device_envs_is_the_sweep_alone(tmp_path):
    out = tmp_path / "sweep.jsonl"
    tiny = [arg for override in TINY for arg in ("--on-device-set", override)]
    args = ["--config", "tiny", "--only", "on_device_envs", "--on-device-envs", "4,8",
            "--repeats", "2", "--warmup", "1", *tiny]
    assert main([*args, "--out", str(out)]) == 0
    records = [json.loads(line) for line in out.read_text().splitlines()]
    sweep = [r for r in records if r.get("measurement") == "on_device_envs"]
    assert [(r["kind"], r["path"], r["num_envs"], r["batch"]) for r in sweep] == [
        ("num_envs", "on_device", 4, 4), ("num_envs", "on_device", 8, 8)]
    assert not [r for r in records if r.get("kind") in ("throughput", "time_to_solve")]
    for r in sweep:
        assert r["sps"] == pytest.approx(8 * r["num_envs"] / r["median_s"])
