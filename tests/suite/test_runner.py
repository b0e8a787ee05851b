import csv
import json
import shutil

import pytest

from gtrxl_jax.config import RunsApartError
from gtrxl_jax.suite import cli
from gtrxl_jax.suite.runner import run_suite, write_report
from gtrxl_jax.suite.suites import SUITES, expand
from gtrxl_jax.suite.tables import read_horizon
from tests.suite.fake_train import FakeTrain, FakeTrainSeeds


def read_csv(path):
    with open(path) as file:
        return list(csv.DictReader(file))


@pytest.fixture
def fast_specs(tmp_path):
    return expand(SUITES["fast"], tmp_path, variants=("gtrxl_gru", "lstm", "feedforward"),
                  seeds=(0, 1))


def test_runner_trains_every_run_and_writes_tables_and_plots(tmp_path, fast_specs):
    train = FakeTrain()
    report = run_suite(SUITES["fast"], tmp_path, train_fn=train, specs=fast_specs)
    assert len(train.calls) == len(fast_specs) == 12
    assert sorted(report.trained) == sorted(s.run_id for s in fast_specs)
    assert not report.failed and not report.skipped
    for name in (
        "results.md",
        "results.csv",
        "aggregates.csv",
        "curves_return.png",
        "curves_success.png",
        "suite.json",
    ):
        assert (tmp_path / name).is_file(), name
        assert (tmp_path / name).stat().st_size > 0
    rows = read_csv(tmp_path / "results.csv")
    assert [(r["task"], r["core"]) for r in rows] == [
        (t, c) for t in ("TMaze-L4", "TMaze-L16") for c in ("gtrxl_gru", "lstm", "feedforward")
    ]
    by_key = {(r["task"], r["core"]): r for r in rows}
    gru = by_key["TMaze-L16", "gtrxl_gru"]
    assert gru["seeds"] == "2" and gru["seed_list"] == "0 1"
    # Seeds 0 and 1 reach 1.00 and 0.99 greedy: scores 100 and 98 (random 0.5, max 1).
    assert float(gru["greedy_episode_return_mean"]) == pytest.approx(0.995)
    assert float(gru["greedy_score_mean"]) == pytest.approx(99.0)
    assert float(gru["greedy_score_std"]) == pytest.approx(1.0)
    assert float(gru["sampled_score_mean"]) == pytest.approx(89.0)
    assert float(by_key["TMaze-L4", "feedforward"]["greedy_score_mean"]) == pytest.approx(-1.0)
    aggregates = {r["core"]: r for r in read_csv(tmp_path / "aggregates.csv")}
    assert set(aggregates) == {"gtrxl_gru", "lstm", "feedforward"}
    assert aggregates["gtrxl_gru"]["mode"] == "sampled"
    assert float(aggregates["lstm"]["capped_mean"]) == pytest.approx(49.0)
    markdown = (tmp_path / "results.md").read_text()
    assert "| TMaze-L16 | gtrxl_gru | 2 | 0.99 ± 0.01 |" in markdown
    plan = json.loads((tmp_path / "suite.json").read_text())
    assert {r["status"] for r in plan["runs"]} == {"finished"}


def test_finished_runs_are_not_run_again(tmp_path, fast_specs):
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=fast_specs)
    again = FakeTrain()
    report = run_suite(SUITES["fast"], tmp_path, train_fn=again, specs=fast_specs)
    assert again.calls == []
    assert len(report.skipped) == len(fast_specs) and not report.trained
    assert len(read_csv(tmp_path / "results.csv")) == 6


def test_a_signal_stops_the_suite_and_the_same_call_resumes_it(tmp_path):
    specs = expand(SUITES["fast"], tmp_path, tasks=("TMaze-L4",), variants=("lstm",),
                   seeds=(0, 1))
    interrupted = FakeTrain(interrupt=True)  # checkpoints, then says interrupted
    report = run_suite(SUITES["fast"], tmp_path, train_fn=interrupted, specs=specs)
    assert len(interrupted.calls) == 1, "a stopped run stops the suite"
    assert report.interrupted == specs[0].run_id
    assert not report.failed and not report.trained
    resumed = FakeTrain()
    report = run_suite(SUITES["fast"], tmp_path, train_fn=resumed, specs=specs)
    assert [c.run.resume for c in resumed.calls] == [True, False]
    assert sorted(report.trained) == sorted(s.run_id for s in specs)
    assert report.interrupted is None


def test_leftovers_without_a_checkpoint_are_moved_aside(tmp_path):
    (spec,) = expand(SUITES["fast"], tmp_path, tasks=("TMaze-L4",), variants=("lstm",),
                     seeds=(1,))
    spec.run_dir.mkdir(parents=True)  # a run that died before its first checkpoint
    (spec.run_dir / "metrics.jsonl").write_text("{}\n")
    train = FakeTrain()
    report = run_suite(SUITES["fast"], tmp_path, train_fn=train, specs=[spec])
    assert [c.run.resume for c in train.calls] == [False]
    assert (spec.run_dir.parent / "seed1.stale-1" / "metrics.jsonl").is_file()
    assert report.trained == [spec.run_id]


def test_a_failed_run_is_recorded_and_the_suite_goes_on(tmp_path):
    specs = expand(SUITES["fast"], tmp_path, tasks=("TMaze-L4",), variants=("lstm", "trxl"),
                   seeds=(0, 1))
    train = FakeTrain(fail_on="trxl/seed0")
    report = run_suite(SUITES["fast"], tmp_path, train_fn=train, specs=specs)
    assert list(report.failed) == ["TMaze-L4/trxl/seed0"]
    assert "simulated crash" in report.failed["TMaze-L4/trxl/seed0"]
    assert len(report.trained) == 3
    crashed = next(s for s in specs if s.run_id == "TMaze-L4/trxl/seed0")
    assert "RuntimeError" in (crashed.run_dir / "suite_error.txt").read_text()
    row = {r["core"]: r for r in read_csv(tmp_path / "results.csv")}["trxl"]
    assert row["seeds"] == "1"
    stopped = FakeTrain(fail_on="seed")
    report = run_suite(
        SUITES["fast"],
        tmp_path / "b",
        train_fn=stopped,
        specs=expand(SUITES["fast"], tmp_path / "b", tasks=("TMaze-L4",)),
        keep_going=False,
    )
    assert len(stopped.calls) == 1 and len(report.failed) == 1


def test_multitask_runs_are_scored_per_task(tmp_path):
    suite = SUITES["multitask"]
    report = run_suite(suite, tmp_path, train_fn=FakeTrain())
    assert len(report.trained) == 4
    rows = read_csv(tmp_path / "results.csv")
    assert [(r["task"], r["core"]) for r in rows] == [
        ("TMaze-L4", "gtrxl_gru"),
        ("TMaze-L4", "lstm"),
        ("TMaze-L16", "gtrxl_gru"),
        ("TMaze-L16", "lstm"),
    ]
    by_key = {(r["task"], r["core"]): r for r in rows}
    # The second task's fake evaluation is 0.1 lower: 0.895 mean -> score 79.
    assert float(by_key["TMaze-L16", "gtrxl_gru"]["greedy_score_mean"]) == pytest.approx(79.0)
    assert (tmp_path / "curves_success.png").is_file()


@pytest.mark.needs_envpool
def test_ablation_table_in_the_paper_layout(tmp_path):
    suite = SUITES["ablation"]
    specs = expand(
        suite,
        tmp_path,
        tasks=("MiniGrid-MemoryS13Random-v0",),
        variants=("gtrxl_gru", "trxl"),
        seeds=(0, 1),
    )
    run_suite(suite, tmp_path, train_fn=FakeTrain(), specs=specs)
    rows = {r["variant"]: r for r in read_csv(tmp_path / "ablation.csv")}
    assert set(rows) == {"gtrxl_gru", "trxl"}
    assert float(rows["gtrxl_gru"]["paper_mean"]) == 117.6
    assert float(rows["trxl"]["paper_capped"]) == 5.0
    # Fake returns 1.0-0.05 / 0.99-0.05 (sampled) on MiniGrid S13Random: scores > 10, learnt;
    # TrXL's 0.6 / 0.59 minus 0.05 are also above random (0.25): learnt.
    assert float(rows["gtrxl_gru"]["failed_pct"]) == 0.0
    assert "| GTrXL (GRU) | 2 |" in (tmp_path / "ablation.md").read_text()


def test_an_ablation_counts_a_crashed_run_as_failed_to_learn(tmp_path):
    """A run that raised (as a run stopped by non-finite updates does) has no result, yet
    it is the divergence the paper's column measures: it counts, as a failure."""
    suite = SUITES["fast_ablation"]
    specs = expand(suite, tmp_path, variants=("gtrxl_gru", "trxl_i"), seeds=(0, 1))
    run_suite(suite, tmp_path, train_fn=FakeTrain(fail_on="trxl_i/seed0"), specs=specs)
    rows = {r["variant"]: r for r in read_csv(tmp_path / "ablation.csv")}
    assert (rows["trxl_i"]["runs"], float(rows["trxl_i"]["failed_pct"])) == ("2", 50.0)
    assert (rows["gtrxl_gru"]["runs"], float(rows["gtrxl_gru"]["failed_pct"])) == ("2", 0.0)


def test_an_ablation_shows_a_variant_whose_every_run_crashed(tmp_path):
    """The divergence the table exists to show at its worst: 100% failed, not a missing row."""
    suite = SUITES["fast_ablation"]
    specs = expand(suite, tmp_path, variants=("gtrxl_gru", "trxl_i"), seeds=(0, 1))
    run_suite(suite, tmp_path, train_fn=FakeTrain(fail_on="trxl_i/"), specs=specs)
    rows = {r["variant"]: r for r in read_csv(tmp_path / "ablation.csv")}
    assert (rows["trxl_i"]["runs"], float(rows["trxl_i"]["failed_pct"])) == ("2", 100.0)
    assert "| TrXL-I | 2 | — | — | — | 100% |" in (tmp_path / "ablation.md").read_text()


def test_report_can_be_written_without_any_finished_run(tmp_path):
    # Plots an earlier report drew, of runs no longer in it, must not outlive it.
    for name in ("aggregates.png", "curves_return.png", "curves_success.png"):
        (tmp_path / name).write_bytes(b"\x89PNG")
    files = write_report(SUITES["fast"], tmp_path)
    assert (tmp_path / "results.md").is_file()
    assert read_csv(tmp_path / "results.csv") == []
    assert all(p.suffix != ".png" for p in files)
    assert not list(tmp_path.glob("*.png"))


def test_a_report_says_which_reported_runs_it_leaves_out(tmp_path, fast_specs, caplog):
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=fast_specs)
    # A fresh clone of a folder whose records were never committed: only the tables remain.
    for path in (tmp_path / "run_records.jsonl", *tmp_path.glob("runs/*/*/seed1")):
        shutil.rmtree(path) if path.is_dir() else path.unlink()
    caplog.clear()
    write_report(SUITES["fast"], tmp_path, fast_specs)
    warnings = "\n".join(r.getMessage() for r in caplog.records if r.levelname == "WARNING")
    assert "the new tables leave out 6 runs that results.csv reported" in warnings
    assert "TMaze-L4/lstm/seed1" in warnings and "TMaze-L4/lstm/seed0" not in warnings
    assert {r["seed_list"] for r in read_csv(tmp_path / "results.csv")} == {"0"}


@pytest.mark.needs_envpool
def test_cli_list_dry_run_and_report_only(tmp_path, capsys):
    assert cli.main(["--list"]) == 0
    assert "ablation" in capsys.readouterr().out
    assert (
        cli.main(["fast", "--dry-run", "--out", str(tmp_path), "--seeds", "0", "--cores", "lstm"])
        == 0
    )
    out = capsys.readouterr().out
    assert "TMaze-L16/lstm/seed0" in out and "2 runs" in out
    run_suite(
        SUITES["fast"],
        tmp_path,
        train_fn=FakeTrain(),
        specs=expand(SUITES["fast"], tmp_path, variants=("lstm",), seeds=(0,)),
    )
    (tmp_path / "results.md").unlink()
    assert cli.main(["fast", "--dry-run", "--out", str(tmp_path), "--seeds", "0", "--cores",
                     "lstm,gtrxl_gru", "--set", "loss.entropy_cost=0.02",
                     "--set", "loss.baseline_cost=0.25"]) == 0
    out = capsys.readouterr().out
    assert "TMaze-L4/gtrxl_gru/seed0" in out and "4 runs, 4 to train (800,000 env steps)" in out
    assert "to train again: loss.baseline_cost: 0.5 then, 0.25 now; loss.entropy_cost: 0.01 " \
        "then, 0.02 now" in out  # every difference (up to 3), not just the first
    assert cli.main(["fast", "--dry-run", "--out", str(tmp_path), "--seeds", "0"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines if line.endswith(" finished")] == [
        "TMaze-L4/lstm/seed0", "TMaze-L16/lstm/seed0"]
    assert lines[-1].startswith("10 runs, 8 to train")
    assert cli.main(["fast", "--report-only", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "results.md").is_file()
    with pytest.raises(SystemExit):
        cli.main([])


@pytest.mark.parametrize("arguments, message", [
    (["--tasks", "TMaze-L5"], "task(s) ['TMaze-L5'] not in this suite"),
    (["--set", "learner.nonsense=1"], "Unknown config key 'learner.nonsense'"),
    (["--report-only", "--cores", "lstm"], "--report-only covers every run finished"),
    (["--budget-scale", "0"], "the budget scale must be a positive number, got 0.0"),
    (["--budget-scale", "inf"], "the budget scale must be a positive number, got inf"),
    (["--seeds", "a,b"], "'a,b' is not a comma-separated list of integers, e.g. 0,1,2"),
    (["--set", "env.task=TMaze-L9"], "env.task is what the suite sets for each run: choose it "
                                     "with --tasks"),
    (["--set", "run.seed=100"], "run.seed is what the suite sets for each run: choose it with "
                                "--seeds"),
    (["--together"], "--together trains on-device runs only"),
    (["--report-only"], "no runs of 'fast' in"),
])
def test_cli_says_what_is_wrong_in_one_line(tmp_path, capsys, arguments, message):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fast", "--dry-run", "--out", str(tmp_path), *arguments])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_cli_refuses_a_file_for_its_output_folder(tmp_path, capsys):
    not_a_folder = tmp_path / "results.md"
    not_a_folder.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fast", "--dry-run", "--out", str(not_a_folder)])
    assert exit_info.value.code == 2
    assert "is a file; name a folder" in capsys.readouterr().err


def test_cli_refuses_a_file_for_its_compile_cache_before_training(tmp_path, capsys):
    not_a_folder = tmp_path / "cache"
    not_a_folder.write_text("")
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["fast", "--out", str(tmp_path / "out"), "--compile-cache", str(not_a_folder),
                  "--tasks", "TMaze-L4", "--cores", "lstm", "--seeds", "0"])
    assert exit_info.value.code == 2
    assert f"--compile-cache {not_a_folder}: cannot make it a folder" in capsys.readouterr().err
    assert not (tmp_path / "out" / "runs").exists()


def test_cli_budget_scale_trains_runs_for_k_times_their_budget(tmp_path, capsys):
    """A run finished at the suite's budget is trained again when asked for 8x it."""
    common = ["fast", "--dry-run", "--out", str(tmp_path), "--seeds", "0", "--cores", "lstm"]
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(),
              specs=expand(SUITES["fast"], tmp_path, variants=("lstm",), seeds=(0,)))
    assert cli.main([*common, "--budget-scale", "8"]) == 0
    out = capsys.readouterr().out
    plan = {line.split()[0]: line.split()[1] for line in out.splitlines()[:2]}
    assert plan == {"TMaze-L4/lstm/seed0": "1,200,000", "TMaze-L16/lstm/seed0": "2,000,000"}
    assert "learner.total_env_steps: 150000 then, 1200000 now" in out
    assert "2 runs, 2 to train (3,200,000 env steps)" in out


def test_cli_exits_130_when_a_signal_stopped_the_suite(tmp_path, monkeypatch, caplog):
    from gtrxl_jax.suite import runner

    train = FakeTrain(interrupt=True)
    monkeypatch.setattr(runner, "default_train_fn", lambda: train)
    status = cli.main(["fast", "--out", str(tmp_path), "--seeds", "0", "--cores", "lstm",
                       "--no-compile-cache"])
    assert status == 130 and len(train.calls) == 1
    assert "0 trained, 0 already finished, 0 failed, stopped by a signal at TMaze-L4/lstm/seed0" \
        in caplog.text


def test_cli_slices_build_one_report(tmp_path, monkeypatch):
    """A slice's report keeps the runs that earlier slices finished in the same folder."""
    from gtrxl_jax.suite import runner

    monkeypatch.setattr(runner, "default_train_fn", FakeTrain)
    common = ["fast", "--out", str(tmp_path), "--seeds", "0", "--no-compile-cache"]
    assert cli.main([*common, "--cores", "lstm"]) == 0
    assert cli.main([*common, "--cores", "gtrxl_gru", "--tasks", "TMaze-L4"]) == 0
    reported = {(row["task"], row["core"]) for row in read_csv(tmp_path / "results.csv")}
    assert reported == {("TMaze-L4", "lstm"), ("TMaze-L16", "lstm"), ("TMaze-L4", "gtrxl_gru")}
    assert cli.main(["fast", "--out", str(tmp_path), "--report-only"]) == 0
    assert {(row["task"], row["core"])
            for row in read_csv(tmp_path / "results.csv")} == reported


def test_horizon_suite_writes_success_against_cue_distance(tmp_path):
    suite = SUITES["memory_horizon"]
    specs = expand(suite, tmp_path, variants=("gtrxl_gru", "lstm", "feedforward"), seeds=(0, 1))
    report = run_suite(suite, tmp_path, train_fn=FakeTrain(), specs=specs)
    for name in ("horizon.md", "horizon.csv", "horizon_success.png", "aggregates.png"):
        assert tmp_path / name in report.files, name
    assert (tmp_path / "horizon_success.png").read_bytes()[:4] == b"\x89PNG"
    rows = read_csv(tmp_path / "horizon.csv")
    assert [(r["core"], int(r["cue_distance"])) for r in rows] == [
        (c, d) for c in ("gtrxl_gru", "lstm", "feedforward") for d in (16, 32, 64, 128)
    ]
    by_key = {(r["core"], r["task"]): r for r in rows}
    # The fake's sampled success: 1.0 - 0.05 - 0.01 x seed for GTrXL, 0.45 - 0.01 x seed
    # feed-forward, whatever the corridor.
    gru = by_key["gtrxl_gru", "TMaze-L127"]
    assert (gru["mode"], gru["seeds"]) == ("sampled", "2")
    assert float(gru["success_mean"]) == pytest.approx(0.945)
    assert float(gru["success_std"]) == pytest.approx(0.005)
    assert float(by_key["feedforward", "TMaze-L15"]["success_mean"]) == pytest.approx(0.445)
    markdown = (tmp_path / "horizon.md").read_text()
    assert "| core | 16 (TMaze-L15) | 32 (TMaze-L31) | 64 (TMaze-L63) | 128 (TMaze-L127) |" in (
        markdown
    )
    assert "| GTrXL (GRU) | 0.94 ± 0.01 |" in markdown
    points = read_horizon(tmp_path / "horizon.csv", "sampled")  # the plot's input again
    assert list(points) == ["gtrxl_gru", "lstm", "feedforward"]
    assert [p[0] for p in points["lstm"]] == [16, 32, 64, 128]
    distance, task, seeds, mean, std = points["gtrxl_gru"][-1]
    assert (distance, task, seeds) == (128, "TMaze-L127", 2)
    assert (mean, std) == (pytest.approx(0.945), pytest.approx(0.005))
    assert read_horizon(tmp_path / "horizon.csv", "greedy") == {}


def test_aggregates_carry_iqm_and_optimality_gap_with_intervals(tmp_path, fast_specs):
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=fast_specs)
    gru = {r["core"]: r for r in read_csv(tmp_path / "aggregates.csv")}["gtrxl_gru"]
    # Sampled scores 90 and 88 (seeds 0, 1) on both tasks: runs 90 90 88 88, IQM 89.
    assert float(gru["iqm"]) == pytest.approx(89.0)
    assert float(gru["optimality_gap"]) == pytest.approx(11.0)
    assert 88.0 <= float(gru["iqm_low"]) <= 89.0 <= float(gru["iqm_high"]) <= 90.0
    assert 10.0 <= float(gru["optimality_gap_low"]) <= float(gru["optimality_gap_high"]) <= 12.0
    assert "| gtrxl_gru | 2 | 89.0 | 89.0 | 89.0 | 89.0 [" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "aggregates.png").read_bytes()[:4] == b"\x89PNG"


def test_aggregates_compare_cores_on_the_tasks_every_core_has(tmp_path, fast_specs):
    # The LSTM has not run TMaze-L16 yet: every core is aggregated over TMaze-L4 alone.
    specs = [s for s in fast_specs if (s.variant, s.task) != ("lstm", "TMaze-L16")]
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=specs)
    assert {r["core"]: r["tasks"] for r in read_csv(tmp_path / "aggregates.csv")} == {
        "gtrxl_gru": "1", "lstm": "1", "feedforward": "1"}
    markdown = (tmp_path / "results.md").read_text()
    assert "Every core over the same tasks: TMaze-L4 (left out, as not every core has a " \
        "score on them yet: TMaze-L16)." in markdown


def test_results_name_a_core_without_any_result_as_left_out_of_the_aggregates(
        tmp_path, fast_specs):
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(),
              specs=[s for s in fast_specs if s.variant != "lstm"])  # the LSTM still to run
    write_report(SUITES["fast"], tmp_path, specs=fast_specs)
    assert {r["core"] for r in read_csv(tmp_path / "aggregates.csv")} == {
        "gtrxl_gru", "feedforward"}
    assert "Every core over the same tasks: TMaze-L4, TMaze-L16. Not aggregated, as they " \
        "have no result yet: lstm." in (tmp_path / "results.md").read_text()


def test_a_tuning_sweep_writes_each_cores_pick_per_task(tmp_path):
    suite = SUITES["memory_tuning"]
    specs = expand(suite, tmp_path, variants=("gtrxl_gru", "lstm"), seeds=(100,))
    # The fake scores best at 1e-3 for GTrXL and at 2e-3 for the LSTM, on every task.
    train = FakeTrain(best_rates={"gtrxl": 1e-3, "lstm": 2e-3})
    report = run_suite(suite, tmp_path, train_fn=train, specs=specs)
    assert {tmp_path / "tuning.md", tmp_path / "tuning.csv"} <= set(report.files)
    rows = read_csv(tmp_path / "tuning.csv")
    assert [(r["task"], r["core"], float(r["learning_rate"])) for r in rows] == [
        (task, core, rate) for task in suite.tasks for core in ("gtrxl_gru", "lstm")
        for rate in (5e-4, 1e-3, 2e-3)
    ]
    for task in suite.tasks:
        assert {r["core"]: float(r["learning_rate"]) for r in rows
                if r["task"] == task and r["chosen"] == "True"} == {
            "gtrxl_gru": 1e-3, "lstm": 2e-3}
    markdown = (tmp_path / "tuning.md").read_text()
    assert "## TMaze-L31" in markdown
    assert "| GTrXL (GRU) | **0.001** | 1 |" in markdown and "| LSTM | **0.002** | 1 |" in markdown
    assert {r["core"] for r in read_csv(tmp_path / "results.csv")} == {
        s.variant for s in specs}


def test_a_tie_goes_to_the_rate_listed_first(tmp_path):
    suite = SUITES["memory_tuning"]
    specs = expand(suite, tmp_path, tasks=("TMaze-L31",), variants=("lstm",), seeds=(100,))
    run_suite(suite, tmp_path, train_fn=FakeTrain(), specs=specs)  # the same score at each
    rows = read_csv(tmp_path / "tuning.csv")
    assert [float(r["learning_rate"]) for r in rows if r["chosen"] == "True"] == [5e-4]


def test_a_core_gets_no_pick_until_it_has_run_at_every_rate(tmp_path):
    suite = SUITES["memory_tuning"]
    specs = expand(suite, tmp_path, tasks=("TMaze-L31",), variants=("gtrxl_gru", "lstm"),
                   seeds=(100,))
    # The LSTM has run only at 2e-3 so far: its best rate yet, but not yet its pick.
    partial = [s for s in specs if s.variant != "lstm@lr0.0005" and s.variant != "lstm@lr0.001"]
    run_suite(suite, tmp_path, train_fn=FakeTrain(best_rates={"gtrxl": 1e-3}), specs=partial,
              report_specs=specs)
    rows = read_csv(tmp_path / "tuning.csv")
    assert [(r["core"], float(r["learning_rate"])) for r in rows if r["chosen"] == "True"] == [
        ("gtrxl_gru", 1e-3)]
    assert [float(r["learning_rate"]) for r in rows if r["core"] == "lstm"] == [2e-3]
    assert "No pick yet (rates still to run): LSTM (0.0005, 0.001)." in (
        tmp_path / "tuning.md").read_text()


def test_together_trains_each_task_and_cores_seeds_in_one_call(tmp_path, fast_specs):
    single, seeds = FakeTrain(), FakeTrainSeeds()
    report = run_suite(SUITES["fast"], tmp_path, train_fn=single, specs=fast_specs,
                       together=True, train_seeds_fn=seeds)
    assert single.calls == []
    assert [[c.run.seed for c in group] for group in seeds.groups] == [[0, 1]] * 6
    assert {(c.env.task, c.agent.core) for c in seeds.groups[0]} == {("TMaze-L4", "gtrxl")}
    assert sorted(report.trained) == sorted(s.run_id for s in fast_specs)
    assert len(read_csv(tmp_path / "results.csv")) == 6

    out = tmp_path / "stopped"
    specs = expand(SUITES["fast"], out, tasks=("TMaze-L4",), variants=("lstm", "trxl"),
                   seeds=(0, 1, 2))
    failing = FakeTrainSeeds(fail_on="lstm/seed0")
    report = run_suite(SUITES["fast"], out, specs=specs, together=True, train_seeds_fn=failing)
    assert sorted(report.failed) == [f"TMaze-L4/lstm/seed{k}" for k in range(3)]
    assert len(report.trained) == 3  # the group after the failed one trained
    interrupted = FakeTrainSeeds(interrupt=True)
    report = run_suite(SUITES["fast"], out, specs=specs, together=True,
                       train_seeds_fn=interrupted)
    assert len(interrupted.groups) == 1 and report.interrupted == "TMaze-L4/lstm/seed0"
    resumed = FakeTrainSeeds()
    run_suite(SUITES["fast"], out, specs=specs, together=True, train_seeds_fn=resumed)
    assert [c.run.resume for c in resumed.groups[0]] == [True] * 3


def test_seeds_that_resume_from_different_steps_train_one_by_one(tmp_path):
    """A group whose runs cannot be one program (`RunsApartError`) trains each run alone,
    and a signal that stops one of them stops the group there."""
    def specs(out):
        return expand(SUITES["fast"], out, tasks=("TMaze-L4",), variants=("lstm",),
                      seeds=(0, 1, 2))

    def apart(configs):
        raise RunsApartError("they start from 1,024 and 0 env steps")

    single = FakeTrain()
    report = run_suite(SUITES["fast"], tmp_path, train_fn=single, specs=specs(tmp_path),
                       together=True, train_seeds_fn=apart)
    assert [c.run.seed for c in single.calls] == [0, 1, 2]
    assert len(report.trained) == 3 and not report.failed

    stopped, out = FakeTrain(interrupt=True), tmp_path / "stopped"
    report = run_suite(SUITES["fast"], out, train_fn=stopped, specs=specs(out), together=True,
                       train_seeds_fn=apart)
    assert len(stopped.calls) == 1 and report.interrupted == "TMaze-L4/lstm/seed0"
    assert not report.failed, "the runs after the stopped one had not started"

    crashing, out = FakeTrain(fail_on="seed1"), tmp_path / "crashing"
    report = run_suite(SUITES["fast"], out, train_fn=crashing, specs=specs(out),
                       together=True, train_seeds_fn=apart)
    assert report.trained == ["TMaze-L4/lstm/seed0"], "it finished before seed 1 failed"
    assert "simulated crash" in report.failed["TMaze-L4/lstm/seed1"]
    assert "TMaze-L4/lstm/seed0" not in report.failed
    assert not (out / "runs" / "TMaze-L4" / "lstm" / "seed0" / "suite_error.txt").exists()
    plan = {run["run_id"]: run["status"]
            for run in json.loads((out / "suite.json").read_text())["runs"]}
    assert plan["TMaze-L4/lstm/seed0"] == "finished"


def test_cli_together_refuses_runs_that_train_with_actors(tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["fast", "--together", "--out", str(tmp_path), "--no-compile-cache"])
    assert "--together trains on-device runs only" in capsys.readouterr().err
    assert not (tmp_path / "suite.json").exists()


def test_results_list_the_published_numbers_of_their_tasks_beside_them(tmp_path):
    specs = expand(SUITES["memory"], tmp_path, tasks=("RepeatFirstMedium", "CountRecallEasy"),
                   variants=("lstm",), seeds=(0,))
    run_suite(SUITES["memory"], tmp_path, train_fn=FakeTrain(), specs=specs)
    markdown = (tmp_path / "results.md").read_text()
    published = markdown.split("## Published numbers for these tasks")[1]
    assert "- RepeatFirstMedium, PPO + GRU (a POPGym baseline): 1 ± 0 (MMER). Source: " \
           "second-hand, NOT checked against the paper" in published
    assert "- CountRecallEasy, the best of POPGym's 13 models (LSTM): 0.509 (MMER)." in published
    assert "- CountRecallEasy, POPGym baselines (" in published and "no number found" in published
    assert "MemoryMaze" not in published  # only the table's tasks


def test_results_without_published_numbers_have_no_such_section(tmp_path, fast_specs):
    run_suite(SUITES["fast"], tmp_path, train_fn=FakeTrain(), specs=fast_specs)
    assert "Published numbers" not in (tmp_path / "results.md").read_text()
