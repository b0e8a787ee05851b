"""A suite's finished runs kept beside its report, so the report can be rebuilt without them.

A run folder holds checkpoints and logs (megabytes, not committed); its outcome is a few
kilobytes: the final evaluation and the learning curve. `write_records` keeps every
finished run's outcome in `<suite folder>/run_records.jsonl`, one JSON line a run:

    {"run_id", "task", "variant", "seed",
     "summary": {"eval", "env_steps", "wall_clock_s"}  (as the run's summary.json),
     "curves": {task: {"env_steps": [N], "episode_return": [N], "success": [N]}}}

(NaN written as null; each curve thinned to at most `MAX_CURVE_POINTS` evenly spaced log
records, its last included). A suite folder with records needs no run folders: its report
(`gtrxl-suite <suite> --report-only`) is rebuilt from them, and a run with a record counts
as finished, so a later slice trained into the same folder adds its runs to the table
instead of replacing it. Where a run's folder has finished too, the folder wins.
"""

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from gtrxl_jax.suite.results import CURVE_KEYS, is_finished, read_curve, read_summary
from gtrxl_jax.suite.suites import RunSpec, split_tasks

logger = logging.getLogger(__name__)

RECORDS_FILE = "run_records.jsonl"
MAX_CURVE_POINTS = 256
_SUMMARY_KEYS = ("eval", "env_steps", "wall_clock_s")

Curve = dict[str, np.ndarray]  # {"env_steps": [N], "episode_return": [N], "success": [N]}


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What the report needs of one finished run.

    Attributes:
      summary: its summary.json (at least "eval", "env_steps", "wall_clock_s").
      curves: task -> its learning curve (`gtrxl_jax.suite.results.read_curve`).
    """

    summary: dict[str, Any]
    curves: dict[str, Curve]


def read_records(output_dir: str | Path) -> dict[str, dict[str, Any]]:
    """The records in a suite folder: run id -> record ({} if it has none)."""
    path = Path(output_dir) / RECORDS_FILE
    if not path.is_file():
        return {}
    records = {}
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            logger.warning("%s:%d: unreadable record (%s); left out", path, number, error)
            continue
        records[record["run_id"]] = record
    return records


def has_finished(spec: RunSpec, records: dict[str, dict[str, Any]]) -> bool:
    """Whether a run has finished: its folder says so, or `records` hold it."""
    return is_finished(spec.run_dir) or spec.run_id in records


def run_outcome(spec: RunSpec, records: dict[str, dict[str, Any]]) -> RunOutcome | None:
    """A run's outcome: from its folder if it has finished, else its record, else None."""
    tasks = split_tasks(spec.task)
    if is_finished(spec.run_dir):
        curves = {t: read_curve(spec.run_dir, t, multi_task=len(tasks) > 1) for t in tasks}
        return RunOutcome(read_summary(spec.run_dir), curves)
    record = records.get(spec.run_id)
    if record is None:
        return None
    curves = {
        task: {key: np.array([math.nan if v is None else v for v in values], np.float64)
               for key, values in curve.items()}
        for task, curve in record["curves"].items()
    }
    return RunOutcome(record["summary"], curves)


def write_records(
    output_dir: str | Path, specs: list[RunSpec], records: dict[str, dict[str, Any]]
) -> Path:
    """Write run_records.jsonl: `records` with each finished run of `specs` put in.

    Args:
      output_dir: the suite folder.
      specs: the runs whose outcomes to record (those that have not finished are left out).
      records: the records so far (`read_records`); those of runs not in `specs` are kept.

    Returns:
      The file's path.
    """
    merged = dict(records)
    for spec in specs:
        outcome = run_outcome(spec, records)
        if outcome is not None:
            merged[spec.run_id] = _record(spec, outcome)
    path = Path(output_dir) / RECORDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(merged[run_id], allow_nan=False) for run_id in sorted(merged))
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _record(spec: RunSpec, outcome: RunOutcome) -> dict[str, Any]:
    summary = {key: outcome.summary.get(key) for key in _SUMMARY_KEYS}
    return {
        "run_id": spec.run_id,
        "task": spec.task,
        "variant": spec.variant,
        "seed": spec.seed,
        "summary": _finite(summary),
        "curves": {task: _thinned(curve) for task, curve in outcome.curves.items()},
    }


def _thinned(curve: Curve) -> dict[str, list]:
    """At most MAX_CURVE_POINTS evenly spaced points of a curve (its last one kept)."""
    n = len(curve["env_steps"])
    keep = np.unique(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS)).round().astype(int))
    return {key: _finite(curve[key][keep].tolist()) for key in ("env_steps", *CURVE_KEYS)}


def _finite(value: Any) -> Any:
    """The same nested value with every NaN or infinity as None (strict JSON)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
