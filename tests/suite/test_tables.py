"""The aggregates over tasks: which tasks and runs they cover."""

import math

from gtrxl_jax.suite.tables import ResultRow, aggregates, shared_tasks


def _row(task: str, variant: str, scores: list[float]) -> ResultRow:
    return ResultRow(task=task, variant=variant, seeds=tuple(range(len(scores))),
                     metric="success", values={}, scores={"sampled": scores, "greedy": scores},
                     env_steps=0.0, wall_clock_s=0.0, steps_to_threshold=None)


def test_a_task_one_core_has_no_score_on_is_left_out_for_every_core():
    """Core y's runs on C have no score: both cores are aggregated over A and B, not x over
    three tasks and y over two."""
    rows = [_row("A", "x", [60.0]), _row("B", "x", [40.0]), _row("C", "x", [0.0]),
            _row("A", "y", [80.0]), _row("B", "y", [20.0]), _row("C", "y", [math.nan])]
    assert shared_tasks(rows, "sampled") == ("A", "B")
    summary = aggregates(rows, "sampled")
    assert {core: (agg["tasks"], agg["mean"]) for core, agg in summary.items()} == {
        "x": (2, 50.0), "y": (2, 50.0)}


def test_the_aggregates_count_the_runs_without_a_score():
    """One of y's three seeds on A has no score: its statistics cover two, and say so."""
    rows = [_row("A", "x", [60.0, 70.0, 80.0]), _row("A", "y", [60.0, math.nan, 80.0])]
    summary = aggregates(rows, "sampled")
    assert (summary["x"]["missing"], summary["y"]["missing"]) == (0, 1)
    assert summary["y"]["iqm"] == 70.0
