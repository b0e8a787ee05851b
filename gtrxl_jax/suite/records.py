"""A suite's finished runs kept beside its report, so the report can be rebuilt without them.

A run folder holds checkpoints and logs (megabytes, not committed); its outcome is a few
kilobytes: the final evaluation and the learning curve. `write_records` keeps every
finished run's outcome in `<suite folder>/run_records.jsonl`, one JSON line a run:

    {"run_id", "task", "variant", "seed",
     "summary": {"eval", "env_steps", "wall_clock_s"}  (as the run's summary.json),
     "curves": {task: {"env_steps": [N], "episode_return": [N], "success": [N]}},
     "config": the config it trained with (its config.json)}

(NaN written as null; each curve thinned to at most `MAX_CURVE_POINTS` evenly spaced log
records, its last included). A suite folder with records needs no run folders: its report
(`gtrxl-suite <suite> --report-only`) is rebuilt from them, and a run with a record counts
as finished, so a later slice trained into the same folder adds its runs to the table
instead of replacing it. Where a run's folder has finished too, the folder wins.

A finished run counts only if it trained with the settings its spec asks for now: when a
suite's definition changes (a tuned learning rate, a budget) or `--set` asks for other
values, a run finished with the old ones is not reused but trained again
(`stale_settings`). Keys that only say where and how a run reports (`REPORTING_KEYS`) and
keys added to the config since the run are not compared; a record written before records
kept their config cannot be checked and counts as it is.
"""

import dataclasses
import json
import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from gtrxl_jax.config import config_differences, to_dict, with_new_keys
from gtrxl_jax.files import write_text_whole
from gtrxl_jax.strict_json import strict_json
from gtrxl_jax.suite.results import (
    CURVE_KEYS,
    Curve,
    is_finished,
    read_curve,
    read_run_config,
    read_summary,
)
from gtrxl_jax.suite.suites import RunSpec, split_tasks

logger = logging.getLogger(__name__)

RECORDS_FILE = "run_records.jsonl"
MAX_CURVE_POINTS = 256
_SUMMARY_KEYS = ("eval", "env_steps", "wall_clock_s")
# Config keys that say where a run writes and how it reports, not what it learns: a finished
# run whose settings differ from its spec's only in these is still the spec's run.
REPORTING_KEYS = ("run.log_dir", "run.resume", "run.progress", "run.wandb",
                  "run.wandb_project", "run.checkpoint_interval_updates",
                  "run.keep_checkpoints")


@dataclasses.dataclass(frozen=True)
class RunOutcome:
    """What the report needs of one finished run.

    Attributes:
      summary: its summary.json (at least "eval", "env_steps", "wall_clock_s").
      curves: task -> its learning curve (`gtrxl_jax.suite.results.read_curve`), thinned
        (`thin_curve`) as its record keeps it, so a report reads the same from either.
      config: the config it trained with, as a dict; None for a record older than that.
    """

    summary: dict[str, Any]
    curves: dict[str, Curve]
    config: dict[str, Any] | None


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


def settings_differences(trained: dict[str, Any] | None, spec: RunSpec) -> list[str]:
    """How the config a run trained with differs from what its spec asks for now.

    One "key: then, now" line per difference; REPORTING_KEYS are not compared, a key that
    `trained` predates counts at its default (`with_new_keys`), and unknown settings (None)
    give none.
    """
    if trained is None:
        return []
    return config_differences(with_new_keys(trained), to_dict(spec.config),
                              skip=REPORTING_KEYS, saved_as="then")


def stale_settings(spec: RunSpec, records: dict[str, dict[str, Any]]) -> list[str]:
    """How the settings a finished run trained with differ from its spec's ([] if they agree).

    The finished run is its folder if that has finished, else its record; [] for a run
    that has not finished.
    """
    if is_finished(spec.run_dir):
        return settings_differences(read_run_config(spec.run_dir), spec)
    return settings_differences(records.get(spec.run_id, {}).get("config"), spec)


def describe_differences(differences: list[str], shown: int = 3) -> str:
    """The first of `stale_settings`' differences, joined, and how many more there are."""
    more = len(differences) - shown
    return "; ".join(differences[:shown]) + (f"; {more} more" if more > 0 else "")


def has_finished(spec: RunSpec, records: dict[str, dict[str, Any]]) -> bool:
    """Whether a run has finished with its spec's settings: its folder or `records` say so."""
    finished = is_finished(spec.run_dir) or spec.run_id in records
    return finished and not stale_settings(spec, records)


def run_outcome(spec: RunSpec, records: dict[str, dict[str, Any]]) -> RunOutcome | None:
    """A run's outcome (its folder's, else its record's); None unless `has_finished`."""
    tasks = split_tasks(spec.task)
    if is_finished(spec.run_dir):
        curves = {t: thin_curve(read_curve(spec.run_dir, t, multi_task=len(tasks) > 1))
                  for t in tasks}
        outcome = RunOutcome(read_summary(spec.run_dir), curves, read_run_config(spec.run_dir))
    elif spec.run_id in records:
        record = records[spec.run_id]
        curves = {
            task: {key: np.array([math.nan if v is None else v for v in values], np.float64)
                   for key, values in curve.items()}
            for task, curve in record["curves"].items()
        }
        outcome = RunOutcome(record["summary"], curves, record.get("config"))
    else:
        return None
    return None if settings_differences(outcome.config, spec) else outcome


def write_records(
    output_dir: str | Path,
    outcomes: Sequence[tuple[RunSpec, RunOutcome | None]],
    records: dict[str, dict[str, Any]],
) -> Path:
    """Write run_records.jsonl: `records` with each finished run's outcome put in.

    Args:
      output_dir: the suite folder.
      outcomes: (run, its outcome) pairs (`run_outcome`); runs with None (not finished)
        are left out.
      records: the records so far (`read_records`); those of runs not in `outcomes` are
        kept.

    Returns:
      The file's path.
    """
    merged = dict(records)
    for spec, outcome in outcomes:
        if outcome is not None:
            merged[spec.run_id] = _record(spec, outcome)
    path = Path(output_dir) / RECORDS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = (json.dumps(merged[run_id], allow_nan=False) for run_id in sorted(merged))
    write_text_whole(path, "".join(line + "\n" for line in lines))
    return path


def _record(spec: RunSpec, outcome: RunOutcome) -> dict[str, Any]:
    summary = {key: outcome.summary.get(key) for key in _SUMMARY_KEYS}
    return {
        "run_id": spec.run_id,
        "task": spec.task,
        "variant": spec.variant,
        "seed": spec.seed,
        "summary": strict_json(summary),
        "curves": {task: {key: strict_json(values.tolist()) for key, values in curve.items()}
                   for task, curve in outcome.curves.items()},
        **({} if outcome.config is None else {"config": outcome.config}),
    }


def thin_curve(curve: Curve) -> Curve:
    """At most MAX_CURVE_POINTS evenly spaced points of a curve (its last one kept).

    Thinning a thinned curve changes nothing, so a run's report is the same whether it reads
    the run's folder or its record.
    """
    n = len(curve["env_steps"])
    keep = np.unique(np.linspace(0, n - 1, min(n, MAX_CURVE_POINTS)).round().astype(int))
    return {key: curve[key][keep] for key in ("env_steps", *CURVE_KEYS)}
