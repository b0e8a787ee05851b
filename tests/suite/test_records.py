import csv
import json
import math
import shutil
import subprocess
import sys
import time

import numpy as np

from gtrxl_jax.config import to_dict
from gtrxl_jax.suite.records import (
    MAX_CURVE_POINTS,
    RECORDS_FILE,
    read_records,
    run_outcome,
    write_records,
)
from gtrxl_jax.suite.runner import run_suite, write_report
from gtrxl_jax.suite.suites import SUITES, expand
from tests.environment import REPO
from tests.suite.fake_train import FakeTrain


def _specs(tmp_path, seeds=(0, 1), tasks=("TMaze-L4", "TMaze-L16")):
    return expand(SUITES["fast"], tmp_path, tasks=tasks, variants=("gtrxl_gru", "lstm"),
                  seeds=seeds)


def test_the_report_is_rebuilt_from_the_records_alone(tmp_path):
    specs = _specs(tmp_path)
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=specs)
    records = read_records(tmp_path)
    assert sorted(records) == sorted(s.run_id for s in specs)
    tables = {name: (tmp_path / name).read_text()
              for name in ("results.csv", "results.md", "aggregates.csv")}
    shutil.rmtree(tmp_path / "runs")  # checkpoints and logs gone; the records stay
    write_report(SUITES["fast"], tmp_path, specs)
    for name, text in tables.items():
        assert (tmp_path / name).read_text() == text, name
    assert read_records(tmp_path) == records
    plan = json.loads((tmp_path / "suite.json").read_text())
    assert {r["status"] for r in plan["runs"]} == {"finished"}


def test_a_later_slice_adds_its_runs_to_the_recorded_ones(tmp_path):
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=_specs(tmp_path, (0,)))
    shutil.rmtree(tmp_path / "runs")
    train = FakeTrain()
    report = run_suite(SUITES["fast"], tmp_path, train_fn=train, specs=_specs(tmp_path))
    assert sorted(c.run.seed for c in train.calls) == [1, 1, 1, 1], "seed 0 is recorded"
    assert len(report.skipped) == 4
    assert len(read_records(tmp_path)) == 8
    # A slice of other runs keeps the earlier slices' runs and configs in suite.json.
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(),
              specs=_specs(tmp_path, (2,), tasks=("TMaze-L4",)))
    plan = json.loads((tmp_path / "suite.json").read_text())
    assert len(plan["runs"]) == len(plan["configs"]) == 10
    assert {r["run_id"] for r in plan["runs"]} == set(plan["configs"])
    assert {r["status"] for r in plan["runs"]} == {"finished"}
    # A report of one task keeps the other task's records.
    write_report(SUITES["fast"], tmp_path, _specs(tmp_path, tasks=("TMaze-L4",)))
    assert len(read_records(tmp_path)) == 10
    results = (tmp_path / "results.csv").read_text()
    assert "TMaze-L4,gtrxl_gru,2," in results and "TMaze-L16" not in results


def test_a_record_keeps_a_thinned_curve_with_its_last_point_and_its_nans(tmp_path):
    spec = _specs(tmp_path, (0,), ("TMaze-L4",))[0]
    spec.run_dir.mkdir(parents=True)
    n = 1000
    with open(spec.run_dir / "metrics.jsonl", "w") as file:
        for i in range(n):
            success = None if i % 2 else i / n
            file.write(json.dumps({"env_steps": i, "episode_return": i, "success": success})
                       + "\n")
    (spec.run_dir / "summary.json").write_text(json.dumps(
        {"eval": {"greedy": {"episode_return": 1.0, "success": float("nan")}},
         "env_steps": n, "wall_clock_s": 2.0, "sps": 500.0}))
    write_records(tmp_path, [(spec, run_outcome(spec, {}))], {})
    line = (tmp_path / RECORDS_FILE).read_text()
    assert "NaN" not in line, "strict JSON: NaN written as null"
    shutil.rmtree(spec.run_dir)
    outcome = run_outcome(spec, read_records(tmp_path))
    curve = outcome.curves["TMaze-L4"]
    assert len(curve["env_steps"]) == MAX_CURVE_POINTS
    assert curve["env_steps"][0] == 0 and curve["env_steps"][-1] == n - 1
    assert np.all(np.diff(curve["env_steps"]) > 0)
    odd = curve["env_steps"] % 2 == 1
    assert np.isnan(curve["success"][odd]).all() and np.isfinite(curve["success"][~odd]).all()
    assert math.isnan(outcome.summary["eval"]["greedy"]["success"] or math.nan)
    assert outcome.summary["env_steps"] == n and "sps" not in outcome.summary


def test_steps_to_90_read_the_same_from_a_run_folder_and_from_its_record(tmp_path):
    spec = _specs(tmp_path, (0,), ("TMaze-L4",))[0]
    spec.run_dir.mkdir(parents=True)
    (spec.run_dir / "config.json").write_text(json.dumps(to_dict(spec.config)))
    n = 1000  # return 0.5 (score 0) before step 600, 1.0 (score 100) from it; odd: no episode
    with open(spec.run_dir / "metrics.jsonl", "w") as file:
        for i in range(n):
            value = None if i % 2 else (1.0 if i >= 600 else 0.5)
            file.write(json.dumps({"env_steps": i, "episode_return": value, "success": value})
                       + "\n")
    (spec.run_dir / "summary.json").write_text(json.dumps(
        {"eval": {mode: {"episode_return": 1.0, "success": 1.0}
                  for mode in ("greedy", "sampled")}, "env_steps": n, "wall_clock_s": 2.0}))

    def reached():
        write_report(SUITES["fast"], tmp_path, [spec])
        with open(tmp_path / "results.csv") as file:
            row = next(csv.DictReader(file))
        return float(row["steps_to_90_median"]), int(row["seeds_reaching_90"])

    from_folder = reached()
    shutil.rmtree(spec.run_dir)
    assert reached() == from_folder
    steps, seeds = from_folder
    # The fifth scored record from step 600 of the thinned curve (256 of the 1000 records).
    assert 600 < steps < 700 and seeds == 1
    assert "| TMaze-L4 | gtrxl_gru | 1 |" in (tmp_path / "results.md").read_text()
    assert "(1/1) |" in (tmp_path / "results.md").read_text()


def test_an_unfinished_run_without_a_record_has_no_outcome(tmp_path):
    spec = _specs(tmp_path, (0,), ("TMaze-L4",))[0]
    assert run_outcome(spec, {}) is None
    write_records(tmp_path, [(spec, run_outcome(spec, {}))], {})
    assert read_records(tmp_path) == {}


def test_the_plan_marks_runs_finished_with_other_settings_pending(tmp_path):
    """A later slice's suite.json gives every run's status against today's settings, not the
    status an earlier slice wrote for it."""
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=_specs(tmp_path, (0,)))
    changed = expand(SUITES["fast"], tmp_path, ["optimizer.learning_rate=0.01"],
                     tasks=("TMaze-L4", "TMaze-L16"), variants=("gtrxl_gru", "lstm"),
                     seeds=(0,))
    slice_ = [s for s in changed if s.task == "TMaze-L4" and s.variant == "lstm"]
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=slice_,
              report_specs=changed)
    plan = {run["run_id"]: run["status"]
            for run in json.loads((tmp_path / "suite.json").read_text())["runs"]}
    assert plan["TMaze-L4/lstm/seed0"] == "finished"
    assert plan["TMaze-L16/gtrxl_gru/seed0"] == "pending"  # finished at 5e-4, not at 0.01


def test_runs_finished_with_other_settings_are_trained_again(tmp_path, caplog):
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=_specs(tmp_path, (0, 1)))
    shutil.rmtree(tmp_path / "runs" / "TMaze-L16")  # these runs live on as records only
    changed = expand(SUITES["fast"], tmp_path, ["optimizer.learning_rate=0.01"],
                     tasks=("TMaze-L4", "TMaze-L16"), variants=("gtrxl_gru", "lstm"),
                     seeds=(0, 1))
    write_report(SUITES["fast"], tmp_path, changed)
    assert "8 finished runs trained with other settings" in caplog.text
    assert "optimizer.learning_rate: 0.0005 then, 0.01 now" in caplog.text
    assert "gtrxl_gru" not in (tmp_path / "results.csv").read_text(), "stale runs left out"
    assert len(read_records(tmp_path)) == 8, "their records are kept until trained again"

    train = FakeTrain()
    report = run_suite(SUITES["fast"], tmp_path, train_fn=train, specs=changed)
    assert len(train.calls) == 8 and not report.skipped
    assert {c.optimizer.learning_rate for c in train.calls} == {0.01}
    assert not any(c.run.resume for c in train.calls), "another run's checkpoint is not resumed"
    aside = sorted(p.name for p in (tmp_path / "runs" / "TMaze-L4" / "lstm").iterdir())
    assert aside == ["seed0", "seed0.stale-1", "seed1", "seed1.stale-1"]
    records = read_records(tmp_path)
    assert {r["config"]["optimizer"]["learning_rate"] for r in records.values()} == {0.01}
    # Settings that only say how a run reports do not make it stale.
    quiet = expand(SUITES["fast"], tmp_path, ["optimizer.learning_rate=0.01",
                                              "run.checkpoint_interval_updates=7"],
                   tasks=("TMaze-L4", "TMaze-L16"), variants=("gtrxl_gru", "lstm"),
                   seeds=(0, 1))
    assert len(run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=quiet).skipped) == 8


def test_a_record_without_its_config_counts_as_it_is(tmp_path):
    specs = _specs(tmp_path, (0,))
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=specs)
    shutil.rmtree(tmp_path / "runs")
    path = tmp_path / RECORDS_FILE
    legacy = [json.loads(line) for line in path.read_text().splitlines()]
    path.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "config"}) + "\n"
                            for r in legacy))
    changed = expand(SUITES["fast"], tmp_path, ["optimizer.learning_rate=0.01"],
                     tasks=("TMaze-L4", "TMaze-L16"), variants=("gtrxl_gru", "lstm"), seeds=(0,))
    report = run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=changed)
    assert len(report.skipped) == 4, "settings unknown: not compared"


def test_a_key_added_since_a_run_counts_at_its_default(tmp_path):
    """A run recorded before a config key existed behaved as the key's default: it stays
    finished while the suite leaves the key there, and is trained again once it sets it."""
    specs = _specs(tmp_path, (0,))
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=specs)
    shutil.rmtree(tmp_path / "runs")
    path = tmp_path / RECORDS_FILE
    records = [json.loads(line) for line in path.read_text().splitlines()]
    for record in records:
        del record["config"]["agent"]["transformer"]["learn_gate_bias"]
    path.write_text("".join(json.dumps(r) + "\n" for r in records))
    report = run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=specs)
    assert len(report.skipped) == 4
    learned = expand(SUITES["fast"], tmp_path, ["agent.transformer.learn_gate_bias=true"],
                     tasks=("TMaze-L4", "TMaze-L16"), variants=("gtrxl_gru", "lstm"),
                     seeds=(0,))
    train = FakeTrain()
    run_suite(SUITES["fast"], tmp_path, train_fn=train, specs=learned)
    assert len(train.calls) == 4


def test_a_report_waits_for_a_slice_that_is_writing_the_same_folder(tmp_path):
    """Slices that finish at once in one folder must not overwrite each other's records:
    a report starts only once another process's hold of the folder's lock has ended."""
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=_specs(tmp_path, (0,)))
    released = tmp_path / "released"
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import pathlib, sys, time\n"
         "from gtrxl_jax.suite.runner import folder_lock\n"
         "folder = pathlib.Path(sys.argv[1])\n"
         "with folder_lock(folder):\n"
         "    (folder / 'held').touch()\n"
         "    time.sleep(3)\n"
         "    (folder / 'released').touch()\n",
         str(tmp_path)], cwd=REPO)
    try:
        while not (tmp_path / "held").exists():
            assert holder.poll() is None, "the lock holder exited early"
            time.sleep(0.05)
        write_report(SUITES["fast"], tmp_path, _specs(tmp_path, (0,)))
        assert released.exists(), "the report was written while the lock was held"
    finally:
        holder.wait(timeout=60)
