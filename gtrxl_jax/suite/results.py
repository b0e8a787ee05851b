"""Reading what a training run left in its folder: the evaluation and the learning curve.

What `gtrxl_jax.train.loop.train` writes into run.log_dir, and what is read here:

- summary.json: {"eval": {"greedy": E, "sampled": E}, "env_steps", "wall_clock_s", "sps",
  "interrupted" (optional)}, E = {"episode_return", "success" (null where the task has
  none), "episodes", "episode_length" (optional)}. With several tasks, each task's E is
  looked for at eval[mode]["tasks"][task] (what the loop writes), else
  eval[mode]["per_task"][task], eval[mode][task] or eval[task][mode]; a task found nowhere
  gets NaN scores (and a warning), never the average of all tasks.
- metrics.jsonl: one record per log interval with "env_steps", "episode_return" and
  "success"; with several tasks, per-task values under "<key>/<task>" (else
  record["tasks"][task][key]). null (a NaN written as JSON) reads as NaN.

A run is finished when summary.json exists, parses, and does not say "interrupted": true.
"""

import dataclasses
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np

from gtrxl_jax.suite.suites import RunSpec, split_tasks

logger = logging.getLogger(__name__)

MODES = ("greedy", "sampled")
CURVE_KEYS = ("episode_return", "success")


@dataclasses.dataclass(frozen=True)
class EvalResult:
    """One evaluation (greedy or sampled) of one task.

    Attributes:
      episode_return: mean return (NaN if missing).
      success: success rate (NaN where the task has none or it is missing).
      episode_length: mean length (NaN if missing).
      episodes: episodes evaluated (0 if missing).
    """

    episode_return: float
    success: float
    episode_length: float
    episodes: int

    def metric(self, name: str) -> float:
        """The value of "episode_return", "success" or "episode_length"."""
        return getattr(self, name)


MISSING_EVAL = EvalResult(math.nan, math.nan, math.nan, 0)
Curve = dict[str, np.ndarray]  # {"env_steps": [N], "episode_return": [N], "success": [N]}


@dataclasses.dataclass(frozen=True)
class TaskResult:
    """The final evaluation of one task in one run (a multi-task run gives one per task).

    Attributes:
      task: the scored task.
      variant: the core variant.
      seed: the run's seed.
      run_dir: the run's folder.
      evals: {"greedy": EvalResult, "sampled": EvalResult}.
      env_steps: environment steps of the whole run (all its tasks).
      wall_clock_s: training time of the run.
      curve: its training curve on the task (`read_curve`, as the report keeps it).
    """

    task: str
    variant: str
    seed: int
    run_dir: Path
    evals: dict[str, EvalResult]
    env_steps: float
    wall_clock_s: float
    curve: Curve


def _read_json_object(path: Path) -> dict[str, Any] | None:
    """A JSON file holding one object, as a dict; None if it is missing or unreadable."""
    if not path.is_file():
        return None
    try:
        value = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as error:
        logger.warning("%s: unreadable (%s)", path, error)
        return None
    return value if isinstance(value, dict) else None


def read_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's summary.json as a dict, or None if it is missing or unreadable."""
    return _read_json_object(Path(run_dir) / "summary.json")


def read_run_config(run_dir: str | Path) -> dict[str, Any] | None:
    """The config a run trained with (its config.json), or None if missing or unreadable."""
    return _read_json_object(Path(run_dir) / "config.json")


def run_status(run_dir: str | Path) -> str:
    """How a run's folder says it ended: "finished", "interrupted" or "missing".

    "interrupted": a signal stopped it (it resumes from its checkpoint); "missing": no
    readable summary.json (it never ended, or crashed).
    """
    summary = read_summary(run_dir)
    if summary is None:
        return "missing"
    return "interrupted" if summary.get("interrupted", False) else "finished"


def is_finished(run_dir: str | Path) -> bool:
    """A run is finished when its summary.json exists and does not say it was interrupted."""
    return run_status(run_dir) == "finished"


def eval_entry(summary: dict[str, Any], mode: str, task: str, tasks: tuple[str, ...]) -> dict:
    """Find the evaluation entry of one task and mode in a summary (see the module docstring).

    Args:
      summary: the parsed summary.json.
      mode: "greedy" or "sampled".
      task: the task wanted.
      tasks: all tasks of the run; with one task, eval[mode] itself is the entry.

    Returns:
      The entry (a dict), or {} if there is none.
    """
    evaluation = summary.get("eval") or {}
    by_mode = evaluation.get(mode) or {}
    if len(tasks) == 1 and "episode_return" in by_mode:
        return by_mode
    candidates = (
        (by_mode.get("tasks") or {}).get(task),
        (by_mode.get("per_task") or {}).get(task),
        by_mode.get(task),
        (evaluation.get(task) or {}).get(mode),
    )
    for entry in candidates:
        if isinstance(entry, dict):
            return entry
    return {}


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return math.nan
    return float(value)


def parse_eval(entry: dict[str, Any]) -> EvalResult:
    """An EvalResult from a summary's evaluation entry (NaN for what is missing)."""
    if not entry:
        return MISSING_EVAL
    episodes = entry.get("episodes")
    return EvalResult(
        episode_return=_number(entry.get("episode_return")),
        success=_number(entry.get("success")),
        episode_length=_number(entry.get("episode_length")),
        episodes=int(episodes) if isinstance(episodes, int | float) else 0,
    )


def task_results(spec: RunSpec, summary: dict[str, Any],
                 curves: dict[str, Curve]) -> list[TaskResult]:
    """The final evaluation of each task of a finished run, from its summary, with its curve."""
    tasks = split_tasks(spec.task)
    results = []
    for task in tasks:
        evals = {}
        for mode in MODES:
            entry = eval_entry(summary, mode, task, tasks)
            if not entry:
                logger.warning(
                    "%s: no %s evaluation of %s in summary.json", spec.run_dir, mode, task
                )
            evals[mode] = parse_eval(entry)
        results.append(
            TaskResult(
                task=task,
                variant=spec.variant,
                seed=spec.seed,
                run_dir=spec.run_dir,
                evals=evals,
                env_steps=_number(summary.get("env_steps")),
                wall_clock_s=_number(summary.get("wall_clock_s")),
                curve=curves[task],
            )
        )
    return results


def read_curve(run_dir: str | Path, task: str, multi_task: bool) -> dict[str, np.ndarray]:
    """A run's learning curve on one task from metrics.jsonl.

    Args:
      run_dir: the run's folder.
      task: the task.
      multi_task: the run trained several tasks (read the per-task entries).

    Returns:
      {"env_steps": [N], "episode_return": [N], "success": [N]} float arrays (NaN where a
      record has no value); empty arrays if there is no metrics.jsonl.
    """
    path = Path(run_dir) / "metrics.jsonl"
    rows = []
    if path.is_file():
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                continue  # a line cut short by a crash
            if isinstance(record, dict) and "env_steps" in record:
                rows.append(
                    [
                        _number(record["env_steps"]),
                        *(_curve_value(record, key, task, multi_task) for key in CURVE_KEYS),
                    ]
                )
    table = np.array(rows, np.float64).reshape(-1, 1 + len(CURVE_KEYS))
    return {"env_steps": table[:, 0], **{k: table[:, i + 1] for i, k in enumerate(CURVE_KEYS)}}


def _curve_value(record: dict, key: str, task: str, multi_task: bool) -> float:
    if not multi_task:
        return _number(record.get(key))
    if f"{key}/{task}" in record:
        return _number(record[f"{key}/{task}"])
    return _number(((record.get("tasks") or {}).get(task) or {}).get(key))
