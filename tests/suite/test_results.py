import json
import math
from pathlib import Path

import numpy as np

from gtrxl_jax.suite import tables
from gtrxl_jax.suite.references import load_references
from gtrxl_jax.suite.results import (
    EvalResult,
    TaskResult,
    eval_entry,
    is_finished,
    parse_eval,
    read_curve,
    run_status,
)
from gtrxl_jax.suite.tables import result_rows

ENTRY = {"episode_return": 0.9, "success": 0.9, "episodes": 100}


def test_eval_entry_single_task():
    summary = {"eval": {"greedy": ENTRY, "sampled": {**ENTRY, "episode_return": 0.8}}}
    assert eval_entry(summary, "greedy", "TMaze-L4", ("TMaze-L4",)) == ENTRY
    assert eval_entry(summary, "sampled", "TMaze-L4", ("TMaze-L4",))["episode_return"] == 0.8
    assert eval_entry({}, "greedy", "TMaze-L4", ("TMaze-L4",)) == {}


def test_eval_entry_finds_per_task_entries_in_every_accepted_layout():
    tasks = ("A", "B")
    layouts = [
        {"eval": {"greedy": {**ENTRY, "tasks": {"A": {"episode_return": 1.0}}}}},
        {"eval": {"greedy": {"per_task": {"A": {"episode_return": 1.0}}}}},
        {"eval": {"greedy": {"A": {"episode_return": 1.0}}}},
        {"eval": {"A": {"greedy": {"episode_return": 1.0}}}},
    ]
    for summary in layouts:
        assert eval_entry(summary, "greedy", "A", tasks) == {"episode_return": 1.0}
        # Never the all-task average for a task that has no entry of its own.
        assert eval_entry(summary, "greedy", "B", tasks) == {}


def test_parse_eval_reads_nulls_as_nan():
    result = parse_eval({"episode_return": 2.0, "success": None, "episodes": 10})
    assert result.episode_return == 2.0 and math.isnan(result.success)
    assert math.isnan(result.episode_length) and result.episodes == 10
    assert math.isnan(parse_eval({}).episode_return)


def test_run_status_and_is_finished(tmp_path):
    assert (run_status(tmp_path), is_finished(tmp_path)) == ("missing", False)
    (tmp_path / "summary.json").write_text("{not json")
    assert (run_status(tmp_path), is_finished(tmp_path)) == ("missing", False)
    (tmp_path / "summary.json").write_text(json.dumps({"eval": {}, "interrupted": True}))
    assert (run_status(tmp_path), is_finished(tmp_path)) == ("interrupted", False)
    (tmp_path / "summary.json").write_text(json.dumps({"eval": {}}))
    assert (run_status(tmp_path), is_finished(tmp_path)) == ("finished", True)


def test_read_curve_single_and_multi_task(tmp_path):
    records = [
        {"update": 1, "env_steps": 100, "episode_return": None, "success": None},
        {
            "update": 2,
            "env_steps": 200,
            "episode_return": 0.5,
            "success": 0.5,
            "episode_return/B": 0.25,
            "success/B": 0.2,
        },
        {
            "update": 3,
            "env_steps": 300,
            "episode_return": 1.0,
            "success": 1.0,
            "tasks": {"B": {"episode_return": 0.75, "success": 0.7}},
        },
    ]
    text = "\n".join(json.dumps(r) for r in records) + '\n{"update": 4, "env_st'
    (tmp_path / "metrics.jsonl").write_text(text)
    single = read_curve(tmp_path, "A", multi_task=False)
    np.testing.assert_array_equal(single["env_steps"], [100, 200, 300])
    np.testing.assert_array_equal(single["episode_return"], [np.nan, 0.5, 1.0])
    multi = read_curve(tmp_path, "B", multi_task=True)
    np.testing.assert_array_equal(multi["success"], [np.nan, 0.2, 0.7])
    empty = read_curve(tmp_path / "missing", "A", multi_task=False)
    assert empty["env_steps"].shape == (0,)


def test_a_task_scored_on_episode_length_gets_a_row_without_steps_to_90():
    """Learning curves keep return and success; HealthGathering is scored on episode length,
    so its steps to 90 are unknown ("n/a"), not a KeyError that stops the report, nor a
    "— (0/1)" that says no seed reached 90."""
    evals = {mode: EvalResult(0.0, math.nan, 600.0, 10) for mode in ("greedy", "sampled")}
    curve = {key: np.array([1.0, 2.0]) for key in ("env_steps", "episode_return", "success")}
    result = TaskResult("HealthGathering-v1", "lstm", 0, Path("run"), evals, 2.0, 1.0, curve)
    (row,) = result_rows([result], load_references(), ("HealthGathering-v1",), ("lstm",))
    assert row.metric == "episode_length" and row.median_steps_to_threshold() is None
    assert tables._steps_reached(row) == "n/a"
