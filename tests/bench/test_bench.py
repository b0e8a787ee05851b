"""The benchmark harness on a tiny workload: records are well formed (timings are not checked)."""

import json
import subprocess
import sys
import tarfile

import jax
import pytest

from gtrxl_jax.bench import MEASUREMENTS, WORKLOADS, Session, register, run_measurements
from gtrxl_jax.bench import learner as bench_learner
from gtrxl_jax.bench.cli import main
from gtrxl_jax.bench.flops import forward_flops, forward_terms, learn_flops, projection_shapes
from gtrxl_jax.bench.peaks import peak_flops
from tests.environment import REPO, child_env

TIMING_FIELDS = {"median_s", "min_s", "max_s", "cpu_median_s", "repeats"}


def positive(record, *fields):
    return all(isinstance(record[f], int | float) and record[f] > 0 for f in fields)


def test_cli_writes_one_json_record_per_figure(tmp_path, capsys):
    out = tmp_path / "bench.jsonl"
    args = ["--config", "tiny", "--only", "scaling", "--memory-lens", "4", "--out", str(out)]
    assert main([*args, "--repeats", "2", "--act-repeats", "2", "--warmup", "1"]) == 0
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    written = [json.loads(line) for line in out.read_text().splitlines()]
    assert printed == written

    machine, *records = written
    peak = peak_flops(jax.devices()[0].device_kind, "float32")  # None on a CPU: no MFU
    assert machine["kind"] == "machine"
    assert {"cpu", "cpu_count", "jax", "backend", "date"} <= machine.keys()
    assert {r["run"] for r in written} == {machine["run"]}

    # "scaling" requires "ceiling" (5 shapes x 2 precisions) and "bandwidth", which run first.
    ceilings = [r for r in records if r["measurement"] == "ceiling"]
    assert records[: len(ceilings)] == ceilings and len(ceilings) == 10
    assert {(r["shape"], r["dtype"]) for r in ceilings} >= {("square", "float32")}
    assert all(TIMING_FIELDS <= r.keys() and positive(r, "gflop_per_s") for r in ceilings)
    bandwidth = records[len(ceilings)]
    assert bandwidth["measurement"] == "bandwidth" and bandwidth["bytes"] >= 2**20
    assert bandwidth["gb_per_s"] == pytest.approx(bandwidth["bytes"] / bandwidth["median_s"] / 1e9)

    scaling = records[len(ceilings) + 1 :]
    assert [(r["kind"], r.get("cached")) for r in scaling] == [
        ("act", True),
        ("act", False),
        ("learn", None),
    ]
    for r in scaling:
        assert r["workload"] == "tiny" and r["memory_len"] == 4 and r["dtype"] == "float32"
        assert TIMING_FIELDS <= r.keys() and positive(r, "median_s", "compile_s", "flops")
        assert positive(r, "gflop_per_s", "ceiling_gflop_per_s", "fraction_of_ceiling")
        if peak is None:
            assert r["mfu"] is None and r["peak_gflop_per_s"] is None
        else:
            assert r["peak_gflop_per_s"] == pytest.approx(peak / 1e9) and positive(r, "mfu")
    for act in scaling[:2]:
        # The step's projections, each timed at its own shape, and their share of the step.
        parts = act["matmul_floor_parts_s"]
        assert set(parts) == set(projection_shapes(WORKLOADS["tiny"].core, 1, 2, True))
        assert act["matmul_floor_s"] == pytest.approx(sum(parts.values()))
        assert act["fraction_of_matmul_floor"] == pytest.approx(
            act["matmul_floor_s"] / act["median_s"])
        assert (parts["memory_keys_values"] > 0) == (not act["cached"])
        assert all(parts[name] > 0 for name in ("query", "positions", "mlp", "gates"))
        assert act["ceiling_read_gb_per_s"] == bandwidth["gb_per_s"]
        floor_s = act["read_bytes_min"] / (bandwidth["gb_per_s"] * 1e9)
        assert act["read_floor_s"] == pytest.approx(floor_s)
        assert act["fraction_of_read_ceiling"] == pytest.approx(floor_s / act["median_s"])
    # Both steps read the same parameters; the cached one the memory's keys and values (per
    # layer 2 x [B, H, M + 1 pending, Dh]), the uncached one its states [B, L, M, D].
    cache_bytes = 4 * 2 * 2 * (2 * 2 * (4 + 1) * 8)
    states_bytes = 4 * 2 * 2 * 4 * 16
    cached_read, uncached_read = (act["read_bytes_min"] for act in scaling[:2])
    assert cached_read - uncached_read == cache_bytes - states_bytes
    lines = main_output(["--summarize", str(out)], capsys).splitlines()
    kinds = [device.device_kind for device in jax.devices()]  # ['cpu', 'cpu'] on the CPU
    assert len(lines) == len(written) and lines[0].startswith(f"machine: {kinds}")
    assert lines[-1].startswith("scaling workload=tiny kind=learn dtype=float32 memory_len=4: ")
    assert "of the matmul ceiling" in lines[-1] and ("MFU" in lines[-1]) == (peak is not None)
    assert "its memory traffic alone" in lines[-1]
    learn = scaling[-1]
    assert learn["tokens_per_s"] == pytest.approx(4 * 2 / learn["median_s"])
    # XLA's planned memory traffic, and the time this run's read ceiling needs for it.
    assert learn["bytes_accessed_xla"] > 0
    floor_s = learn["bytes_accessed_xla"] / (bandwidth["gb_per_s"] * 1e9)
    assert learn["traffic_floor_s"] == pytest.approx(floor_s)
    assert learn["fraction_of_traffic_floor"] == pytest.approx(floor_s / learn["median_s"])
    assert learn["flops"] == learn_flops(WORKLOADS["tiny"].with_memory(4).core, 4, 2)


def main_output(argv, capsys):
    assert main(argv) == 0
    return capsys.readouterr().out


def test_registry_runs_requirements_once_and_stamps_records():
    calls = []

    @register("test_probe", requires=("test_base",))
    def probe(session):
        calls.append("probe")
        yield {"kind": "probe", "base_seen": session.find(measurement="test_base") is not None}

    @register("test_base")
    def base(session):
        calls.append("base")
        yield {"kind": "base"}

    try:
        session = Session(WORKLOADS["tiny"])
        records = run_measurements(session, ["test_probe", "test_base"], emit=lambda r: None)
        assert calls == ["base", "probe"]
        assert [r["measurement"] for r in records] == ["test_base", "test_probe"]
        assert records[1]["base_seen"] and all(r["run"] == session.run_id for r in records)
        with pytest.raises(ValueError, match="unknown measurement 'nope'"):
            run_measurements(session, ["nope"], emit=lambda r: None)
    finally:
        del MEASUREMENTS["test_probe"], MEASUREMENTS["test_base"]


def test_cli_rejects_unknown_measurements():
    with pytest.raises(SystemExit):
        main(["--only", "learn,nope"])


@pytest.mark.parametrize("argv, message", [
    (["--only", "e2e", "--e2e-set", "learner.typo=3"], "Unknown config key 'learner.typo'"),
    (["--only", "on_device", "--on-device-set", "optimizer.learning_rate=fast"],
     "optimizer.learning_rate must be a float, got 'fast'"),
    (["--only", "e2e", "--e2e-tasks", "TMaze-L4,TMaze-Lx"], "unknown task 'TMaze-Lx'"),
    (["--only", "scaling", "--memory-lens", "64,many"],
     "'64,many' is not a comma-separated list of integers"),
    (["--only", "scaling", "--memory-lens", "0,-1"],
     "'0,-1' must be comma-separated integers >= 1"),
    (["--only", "on_device_envs", "--on-device-envs", "0,-4"], "integers >= 1"),
    (["--only", "on_device_envs", "--on-device-set", "learner.trajectory_len=0"],
     "learner.trajectory_len"),
    (["--only", "e2e", "--e2e-steps", "10"], "none after the 2 warm-up update(s)"),
    (["--only", "e2e", "--warmup", "-3"], "need warmup >= 1"),
    (["--only", "on_device", "--on-device-steps", "10"], "(--on-device-steps) or lower --warmup"),
])
def test_a_bad_training_override_is_a_usage_error_before_any_measurement(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    out, err = capsys.readouterr()
    assert message in err and "Traceback" not in err
    assert out == ""  # not even the machine record: nothing was measured


def test_an_output_path_that_cannot_be_written_is_a_usage_error(tmp_path, capsys):
    (tmp_path / "file").write_text("")
    for out in (tmp_path, tmp_path / "file" / "x.jsonl"):
        with pytest.raises(SystemExit) as exit_info:
            main(["--only", "ceiling", "--out", str(out)])
        assert exit_info.value.code == 2
        out_text, err = capsys.readouterr()
        assert f"--out {out}: cannot append to it" in err and out_text == ""


@pytest.mark.parametrize("content", ["{bad\n", "[1, 2]\n"])
def test_summarize_names_a_line_that_is_not_a_record(tmp_path, capsys, content):
    records = tmp_path / "bench.jsonl"
    records.write_text('{"run": "x", "measurement": "learn"}\n' + content)
    with pytest.raises(SystemExit) as exit_info:
        main(["--summarize", str(records)])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert f"{records}, line 2: not a JSON record" in err and "Traceback" not in err


def test_flop_counts():
    cfg = WORKLOADS["reference"].core  # L 4, D 256, 8 heads x 32, F 1024, M 64
    L, M, D, A, F, T, B = 4, 64, 256, 256, 1024, 32, 32
    # The acting cache saves exactly the memory's key/value projection.
    cached, uncached = forward_flops(cfg, 1, B, cached=True), forward_flops(cfg, 1, B)
    assert uncached - cached == L * 2 * B * M * D * 2 * A
    terms = forward_terms(cfg, T, B, cached=False)
    assert terms["mlp"] == L * 2 * 2 * T * B * D * F
    assert terms["gates"] == L * 2 * 2 * T * B * D * D * 6  # two GRU gates of 6 projections
    # Each of the two GRU gates makes three fused matmuls: W_r W_z W_g, U_r U_z, U_g.
    gate_matmuls = [(T * B, D, 3 * D), (T * B, D, 2 * D), (T * B, D, D)]
    assert projection_shapes(cfg, T, B, cached=False)["gates"] == gate_matmuls * 2
    # Backward: 2x forward, but no input gradient into the memory and the sinusoids.
    no_input_grad = terms["memory_keys_values"] + terms["positions"]
    assert learn_flops(cfg, T, B) == 3 * sum(terms.values()) - no_input_grad


def test_torso_times_every_gradient_method_and_the_acting_forward():
    session = Session(WORKLOADS["tiny"], repeats=1, warmup=0)
    records = []
    run_measurements(session, ["torso"], records.append)
    assert [(r["kind"], r["kernel_grad"], r["pool_grad"], r["frames"]) for r in records] == [
        ("torso_learn", "xla", "xla", 16), ("torso_learn", "xla", "elementwise", 16),
        ("torso_learn", "matmul", "xla", 16), ("torso_learn", "matmul", "elementwise", 16),
        ("torso_act", "xla", "xla", 2)]
    assert all(TIMING_FIELDS <= r.keys() and positive(r, "median_s", "compile_s")
               for r in records)


def test_update_times_the_learners_whole_update_and_its_first_call(monkeypatch):
    timed_batches, original = [], bench_learner.time_updates

    def time_updates(learner, batch, repeats, warmup):
        timed_batches.append(batch)
        return original(learner, batch, repeats, warmup)

    monkeypatch.setattr(bench_learner, "time_updates", time_updates)
    session = Session(WORKLOADS["tiny"], repeats=2, warmup=0)
    records = []
    run_measurements(session, ["update"], records.append)
    # The starting memory is on a device before timing, as an actor's is in training.
    (batch,) = timed_batches
    assert all(isinstance(leaf, jax.Array) for leaf in jax.tree.leaves(batch.core_state))
    (record,) = records
    workload = WORKLOADS["tiny"]
    assert (record["kind"], record["unroll"], record["batch"]) == (
        "update", workload.unroll, workload.batch)
    assert record["layers"] == workload.core.num_layers and record["optimizer"] == "adam"
    assert TIMING_FIELDS <= record.keys() and positive(record, "first_call_s", "env_steps_per_s")
    assert record["compile_s"] == pytest.approx(record["first_call_s"] - record["median_s"])


def test_peak_flops_match_device_kinds_most_specific_first():
    assert peak_flops("NVIDIA H100 80GB HBM3", "bfloat16") == pytest.approx(989.4e12)
    assert peak_flops("NVIDIA H100 PCIe", "bfloat16") == pytest.approx(756.0e12)
    assert peak_flops("NVIDIA H200", "float32") == pytest.approx(494.7e12)
    assert peak_flops("cpu", "float32") is None
    assert peak_flops("NVIDIA H100 80GB HBM3", "float16") is None


def test_measurements_without_the_training_stack_say_what_to_install(tmp_path):
    """A Python without the training stack (a GPU machine's own) runs the core's
    measurements; e2e and update are listed and, when chosen, fail with what to install."""
    script = (
        "import sys; sys.modules['rlax'] = None\n"
        "from gtrxl_jax.bench.cli import main\n"
        "main(['--list'])\n"
        "main(['--config', 'tiny', '--only', 'update'])\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                            cwd=REPO, env=child_env(), timeout=300)
    assert result.returncode != 0
    assert "act " in result.stdout and "e2e        (unavailable" in result.stdout
    assert "measurement 'update' cannot run here" in result.stderr
    assert "install requirements.txt" in result.stderr


def test_the_prepared_gpu_script_runs_end_to_end(tmp_path):
    """scripts/gpu_bench.sh on the tiny workload: every step runs and the summary is written."""
    result = subprocess.run(
        ["bash", "scripts/gpu_bench.sh", str(tmp_path)], capture_output=True, text=True,
        cwd=REPO, timeout=600, env=child_env(CONFIGS="tiny", PYTHON=sys.executable,
                                             ON_DEVICE_ENVS="4", TRAIN_STEPS="2048"))
    assert result.returncode == 0, result.stdout + (tmp_path / "errors.txt").read_text()
    records = [json.loads(line) for line in (tmp_path / "bench.jsonl").read_text().splitlines()]
    timed = {(r["measurement"], r["dtype"])
             for r in records if r.get("kind") in ("learn", "act", "update")}
    assert timed == {("learn", "bfloat16"), ("act", "bfloat16"), ("update", "bfloat16"),
                     ("learn", "float32"), ("act", "float32"), ("update", "float32"),
                     ("scaling", "bfloat16")}
    (sweep,) = [r for r in records if r.get("measurement") == "on_device_envs"
                and r.get("kind") == "num_envs"]
    assert sweep["num_envs"] == 4 and sweep["sps"] > 0
    trained = json.loads((tmp_path / "train_summary.json").read_text())
    assert trained["env_steps"] >= 2048 and not trained["interrupted"]
    assert (tmp_path / "metrics.jsonl").read_text().strip()
    with tarfile.open(tmp_path / "profile.tgz") as profile:
        assert {"./report.txt", "./trace.json.gz", "./hlo.txt"} <= set(profile.getnames())
        report = profile.extractfile("./report.txt").read().decode()
    assert "thunks" in report and "per kind:" in report
    summary = (tmp_path / "summary.txt").read_text().splitlines()
    assert len(summary) == len(records) and summary == result.stdout.splitlines()[-len(records):]


def test_the_gpu_script_skips_what_its_budget_cannot_fit(tmp_path):
    result = subprocess.run(
        ["bash", "scripts/gpu_bench.sh", str(tmp_path)], capture_output=True, text=True,
        cwd=REPO, timeout=300, env=child_env(CONFIGS="tiny", PYTHON=sys.executable,
                                             BUDGET_S="30"))
    assert result.returncode == 1
    skipped = [line for line in result.stdout.splitlines() if line.endswith("budget left")]
    assert len(skipped) == 6 and all(": skipped, " in line for line in skipped)
    assert not (tmp_path / "summary.txt").exists() and not result.stderr
