"""Run a suite: every (task, core, seed) as a training run, then the tables and plots.

    report = run_suite(SUITES["fast"], "runs/suites/fast")             # train() of the loop
    report = run_suite(suite, out, train_fn=my_train)                   # any TrainConfig -> _
    report = run_suite(suite, out, together=True)   # a task and core's seeds in one program

Resumable: a finished run (summary.json present, not marked interrupted, or a record of it
in run_records.jsonl) is skipped if it trained with the settings the suite asks for now
(else it is trained again: `gtrxl_jax.suite.records.stale_settings`); a run that stopped
part-way resumes from its latest checkpoint (run.resume=true); a run folder with output
but no checkpoint, or trained with other settings, is moved aside (<run>.stale-<n>) and the
run starts afresh. A run that raises is logged, its traceback
saved as suite_error.txt in its folder, and the suite goes on with the next run (unless
keep_going=False). A run stopped by a signal (Ctrl-C, SIGTERM; it checkpoints and marks its
summary interrupted) stops the suite: the same command continues it. The report is written
from whatever has finished, so it can be regenerated at any time with `write_report`.

Outputs in the suite's folder:
    suite.json                  the suite, its cost note, and every run with its status
    run_records.jsonl           every finished run's evaluation and learning curve, enough to
                                rebuild the report without the run folders (see
                                gtrxl_jax.suite.records): commit it with the tables
    results.md, results.csv     per task and core (see gtrxl_jax.suite.tables)
    aggregates.csv              per core, over tasks (and IQM, optimality gap, intervals)
    aggregates.png              per core, IQM and optimality gap with 95% intervals
    ablation.md, ablation.csv   ablation suites only
    horizon.md, horizon.csv, horizon_success.png   horizon suites only: success against
                                cue distance, a line per core
    curves_return.png, curves_success.png   learning curves (see gtrxl_jax.suite.plots)
    runs/<task>/<core>/seed<k>/ each run's own folder (train's outputs)
"""

import contextlib
import dataclasses
import fcntl
import json
import logging
import os
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from gtrxl_jax.config import RunsApartError, TrainConfig, to_dict
from gtrxl_jax.files import write_text_whole
from gtrxl_jax.suite.plots import plot_horizon, plot_intervals, plot_learning_curves
from gtrxl_jax.suite.records import (
    describe_differences,
    has_finished,
    read_records,
    run_outcome,
    settings_differences,
    stale_settings,
    write_records,
)
from gtrxl_jax.suite.references import References, load_references
from gtrxl_jax.suite.results import (
    CURVE_KEYS,
    TaskResult,
    read_run_config,
    run_status,
    task_results,
)
from gtrxl_jax.suite.suites import RunSpec, Suite, expand, split_tasks
from gtrxl_jax.suite.tables import (
    horizon_points,
    reported_runs,
    result_rows,
    write_ablation,
    write_horizon,
    write_results,
    write_tuning,
)

logger = logging.getLogger(__name__)

TrainFn = Callable[[TrainConfig], Any]
TrainSeedsFn = Callable[[list[TrainConfig]], Any]
# A run that raised leaves its traceback here (and counts as failed to learn in an ablation).
ERROR_FILE = "suite_error.txt"
CURVE_FILES = {"episode_return": "curves_return.png", "success": "curves_success.png"}


@contextlib.contextmanager
def folder_lock(output_dir: Path) -> Iterator[None]:
    """Holds an exclusive lock on a suite folder (created) while its shared files change.

    Slices trained into one folder at once (one per core) each read and rewrite suite.json,
    run_records.jsonl and the tables; under the lock each one reads what the others wrote.
    """
    output_dir.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(output_dir, os.O_RDONLY)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX)
        yield
    finally:
        os.close(descriptor)  # releases the lock


@dataclasses.dataclass
class SuiteReport:
    """What a call of `run_suite` did.

    Attributes:
      suite: the suite's name.
      output_dir: its folder.
      trained: run ids trained (to the end) by this call.
      skipped: run ids already finished before this call.
      failed: run id -> error message, for runs that raised or did not finish.
      interrupted: the run id a signal stopped (the suite stopped there), or None.
      files: the report files written.
    """

    suite: str
    output_dir: Path
    trained: list[str] = dataclasses.field(default_factory=list)
    skipped: list[str] = dataclasses.field(default_factory=list)
    failed: dict[str, str] = dataclasses.field(default_factory=dict)
    interrupted: str | None = None
    files: list[Path] = dataclasses.field(default_factory=list)


def default_train_fn() -> TrainFn:
    """The project's training entry point, `gtrxl_jax.train.loop.train`."""
    from gtrxl_jax.train.loop import train

    return train


def has_checkpoint(run_dir: Path) -> bool:
    """Whether a run folder holds a checkpoint to resume from (a numbered checkpoints/ entry)."""
    directory = run_dir / "checkpoints"
    return directory.is_dir() and any(p.name.isdigit() for p in directory.iterdir())


def default_train_seeds_fn() -> TrainSeedsFn:
    """The project's entry point for seeds trained together, `gtrxl_jax.train.loop.train_seeds`."""
    from gtrxl_jax.train.loop import train_seeds

    return train_seeds


def prepare_run(spec: RunSpec) -> TrainConfig:
    """The config to train a not-yet-finished run with: resuming, or fresh in an empty folder.

    A folder trained with other settings than the spec's (`settings_differences`), or with
    output but no checkpoint, is moved aside to "<folder>.stale-<n>", never resumed.
    """
    run_dir = spec.run_dir
    changed = settings_differences(read_run_config(run_dir), spec)
    if has_checkpoint(run_dir) and not changed:
        logger.info("%s: resuming from its latest checkpoint", spec.run_id)
        return dataclasses.replace(
            spec.config, run=dataclasses.replace(spec.config.run, resume=True)
        )
    if run_dir.is_dir() and any(run_dir.iterdir()):
        n = 1
        while run_dir.with_name(f"{run_dir.name}.stale-{n}").exists():
            n += 1
        stale = run_dir.with_name(f"{run_dir.name}.stale-{n}")
        reason = (f"trained with other settings ({describe_differences(changed)})" if changed
                  else "output without a checkpoint")
        logger.warning("%s: %s; moved to %s, starting afresh", spec.run_id, reason, stale)
        run_dir.rename(stale)
    return spec.config


def run_suite(
    suite: Suite,
    output_dir: str | Path,
    train_fn: TrainFn | None = None,
    specs: list[RunSpec] | None = None,
    keep_going: bool = True,
    references: References | None = None,
    together: bool = False,
    train_seeds_fn: TrainSeedsFn | None = None,
    report_specs: list[RunSpec] | None = None,
) -> SuiteReport:
    """Train every unfinished run of a suite, then write the report.

    Args:
      suite: the suite.
      output_dir: its folder (created).
      train_fn: called with each run's TrainConfig; it must leave summary.json (and
        metrics.jsonl) in config.run.log_dir. Default: gtrxl_jax.train.loop.train.
      specs: the runs (default: every run of `expand(suite, output_dir)`).
      keep_going: go on with the next run after a failure.
      references: the reference data (default: gtrxl_jax/suite/references.json).
      together: train each task and core's unfinished seeds at once, in one program
        (`train_seeds_fn`); a group that fails fails each of its runs.
      train_seeds_fn: called with a group's TrainConfigs, as `train_fn` with one. Default:
        gtrxl_jax.train.loop.train_seeds (on-device tasks only).
      report_specs: the runs the report covers, those of them that have finished, and whose
        status suite.json gives, each against its settings today (default: `specs`); pass
        the whole suite's to keep earlier slices' runs in the tables.

    Returns:
      The SuiteReport.
    """
    output_dir = Path(output_dir)
    specs = expand(suite, output_dir) if specs is None else specs
    report_specs = specs if report_specs is None else report_specs
    report = SuiteReport(suite.name, output_dir)
    records = read_records(output_dir)
    _warn_stale(specs, records)
    finished = [has_finished(s, records) for s in specs]
    pending = [s for s, done in zip(specs, finished, strict=True) if not done]
    report.skipped = [s.run_id for s, done in zip(specs, finished, strict=True) if done]
    if report.skipped:
        logger.info(
            "%s: %d of %d runs already finished", suite.name, len(report.skipped), len(specs)
        )
    if pending and train_fn is None:
        train_fn = default_train_fn()
    _write_plan(suite, output_dir, report_specs, report, records)
    groups = seed_groups(pending) if together else [[spec] for spec in pending]
    if together and any(len(group) > 1 for group in groups) and train_seeds_fn is None:
        train_seeds_fn = default_train_seeds_fn()
    for index, group in enumerate(groups, start=1):
        names = group[0].run_id if len(group) == 1 else ", ".join(s.run_id for s in group)
        logger.info("[%d/%d] %s: training", index, len(groups), names)
        start = time.perf_counter()
        try:
            configs = [prepare_run(spec) for spec in group]
            if len(group) == 1:
                train_fn(configs[0])
            else:
                _train_together(configs, train_fn, train_seeds_fn)
        except Exception as error:  # noqa: BLE001  (one failed run must not stop the suite)
            for spec in group:
                if run_status(spec.run_dir) != "missing":  # it ended before another one failed
                    _note_outcome(spec, report)
                    continue
                report.failed[spec.run_id] = f"{type(error).__name__}: {error}"
                spec.run_dir.mkdir(parents=True, exist_ok=True)
                (spec.run_dir / ERROR_FILE).write_text(traceback.format_exc())
                logger.error("%s failed: %s", spec.run_id, report.failed[spec.run_id])
            if not keep_going:
                break
            continue
        for spec in group:
            _note_outcome(spec, report)
        if report.interrupted:
            logger.warning("%s: stopped by a signal; the suite stops here (the same command "
                           "continues it, from the run's checkpoint)", report.interrupted)
            break
        if any(spec.run_id in report.trained for spec in group):
            logger.info("[%d/%d] %s: done in %.0f s", index, len(groups), names,
                        time.perf_counter() - start)
    _write_plan(suite, output_dir, report_specs, report, records)
    report.files = write_report(suite, output_dir, report_specs, references)
    return report


def _train_together(configs: list[TrainConfig], train_fn: TrainFn,
                    train_seeds_fn: TrainSeedsFn) -> None:
    """Train a group's runs in one program, or one by one if they resume from different steps.

    Runs resume from different env steps after some trained alone, or after a kill that came
    between two runs' checkpoints; one by one, each resumes from its own. A run stopped by a
    signal ends the group there, as it ends the suite.
    """
    try:
        train_seeds_fn(configs)
    except RunsApartError as error:
        logger.warning("%s: training them one by one", error)
        for config in configs:
            train_fn(config)
            if run_status(config.run.log_dir) == "interrupted":
                return


def seed_groups(specs: list[RunSpec]) -> list[list[RunSpec]]:
    """The runs grouped by task and core, in order: each group differs only in its seeds."""
    groups: dict[tuple[str, str], list[RunSpec]] = {}
    for spec in specs:
        groups.setdefault((spec.task, spec.variant), []).append(spec)
    return list(groups.values())


def _note_outcome(spec: RunSpec, report: SuiteReport) -> None:
    """Record in `report` how a run that `train` returned from ended, from its summary.

    A run with no summary after a signal stopped another run of its group had not started.
    """
    status = run_status(spec.run_dir)
    if status == "missing" and report.interrupted:
        logger.info("%s: not started (the suite was stopped by a signal)", spec.run_id)
    elif status == "missing":
        report.failed[spec.run_id] = "train returned without a finished summary.json"
        logger.error("%s: %s", spec.run_id, report.failed[spec.run_id])
    elif status == "interrupted":
        report.interrupted = report.interrupted or spec.run_id
    else:
        report.trained.append(spec.run_id)


def write_report(
    suite: Suite,
    output_dir: str | Path,
    specs: list[RunSpec] | None = None,
    references: References | None = None,
) -> list[Path]:
    """Write the tables, plots and run records of a suite from its finished runs; return the files.

    A run counts as finished if its folder has finished or run_records.jsonl holds it, with
    the settings its spec asks for (runs finished with others are named in a warning and
    left out); the records of every such run (and those already there for runs outside
    `specs`) are written back. The folder is locked meanwhile (`folder_lock`), so slices
    that finish at once in one folder each keep what the others recorded.

    Args:
      suite: the suite.
      output_dir: its folder.
      specs: its runs (default: every run of `expand(suite, output_dir)`).
      references: the reference data (default: gtrxl_jax/suite/references.json).
    """
    output_dir = Path(output_dir)
    specs = expand(suite, output_dir) if specs is None else specs
    with folder_lock(output_dir):
        return _write_report(suite, output_dir, specs, references or load_references())


def _write_report(suite: Suite, output_dir: Path, specs: list[RunSpec],
                  references: References) -> list[Path]:
    records = read_records(output_dir)
    _warn_stale(specs, records)
    outcomes = [(spec, run_outcome(spec, records)) for spec in specs]
    results = [result for spec, outcome in outcomes if outcome is not None
               for result in task_results(spec, outcome.summary, outcome.curves)]
    spec_tasks = {t for spec in specs for t in split_tasks(spec.task)}
    tasks = tuple(t for t in suite.scored_tasks() if t in spec_tasks)
    variants = tuple(dict.fromkeys(spec.variant for spec in specs))
    rows = result_rows(results, references, tasks, variants)
    _warn_dropped(reported_runs(output_dir) - {(r.task, r.variant, seed) for r in rows
                                               for seed in r.seeds})
    title = f"Suite {suite.name!r}: {suite.description}"
    summary = write_results(rows, output_dir, suite.score_mode, title, references,
                            variants)
    files = [output_dir / name for name in ("results.md", "results.csv", "aggregates.csv")]
    files.append(write_records(output_dir, outcomes, records))
    path = output_dir / "aggregates.png"
    _list_or_remove(plot_intervals(summary, path, f"Suite {suite.name!r}, {suite.score_mode} "
                                   "evaluation"), path, files)
    if suite.ablation:
        crashed = Counter(spec.variant for spec, outcome in outcomes
                          if outcome is None and (spec.run_dir / ERROR_FILE).is_file())
        write_ablation(rows, references, output_dir, suite.score_mode, crashed)
        files += [output_dir / "ablation.md", output_dir / "ablation.csv"]
    if suite.learning_rates:
        write_tuning(rows, output_dir, suite.score_mode, suite.learning_rates)
        files += [output_dir / "tuning.md", output_dir / "tuning.csv"]
    if suite.horizon:
        write_horizon(rows, output_dir, suite.score_mode)
        files += [output_dir / "horizon.md", output_dir / "horizon.csv"]
        trajectory_len = specs[0].config.learner.trajectory_len if specs else None
        path = output_dir / "horizon_success.png"
        points = horizon_points(rows, suite.score_mode)
        _list_or_remove(plot_horizon(points, path, f"Suite {suite.name!r}", trajectory_len),
                        path, files)
    for metric in CURVE_KEYS:
        curves = _curves(results, tasks, metric)
        path = output_dir / CURVE_FILES[metric]
        _list_or_remove(plot_learning_curves(curves, metric, path, f"Suite {suite.name!r}"),
                        path, files)
    logger.info("%s: report written to %s", suite.name, output_dir)
    return files


def _list_or_remove(drawn: bool, path: Path, files: list[Path]) -> None:
    """List a plot just drawn, or remove the one an earlier report left at `path`."""
    if drawn:
        files.append(path)
    else:
        path.unlink(missing_ok=True)


def _warn_stale(specs: list[RunSpec], records: dict) -> None:
    """Log the finished runs that trained with other settings than their specs ask for now."""
    stale = {s.run_id: changed for s in specs if (changed := stale_settings(s, records))}
    if stale:
        logger.warning(
            "%d finished runs trained with other settings than the suite asks for now; "
            "they are left out of the report and trained again by the suite's command:\n  %s",
            len(stale), "\n  ".join(f"{run_id}: {describe_differences(changed)}"
                                   for run_id, changed in stale.items()))


def _warn_dropped(dropped: set[tuple[str, str, int]]) -> None:
    """Log the runs the folder's results.csv reported and its new tables leave out."""
    if dropped:
        logger.warning(
            "the new tables leave out %d runs that results.csv reported: their run folders "
            "and run_records.jsonl entries are gone (or they are stale, as above). `git "
            "checkout` the folder restores the committed tables; the suite's command trains "
            "them again:\n  %s", len(dropped),
            "\n  ".join(f"{task}/{core}/seed{seed}" for task, core, seed in sorted(dropped)))


def _curves(results: list[TaskResult], tasks: tuple[str, ...], metric: str) -> dict:
    """{task: {variant: [(env_steps [N], metric [N]) of each run]}} for the plotted tasks."""
    curves: dict[str, dict[str, list]] = {task: {} for task in tasks}
    for result in results:
        if result.task in curves:
            curves[result.task].setdefault(result.variant, []).append(
                (result.curve["env_steps"], result.curve[metric]))
    return curves


def _write_plan(suite: Suite, output_dir: Path, specs: list[RunSpec], report: SuiteReport,
                records: dict):
    def status(spec: RunSpec) -> str:
        if spec.run_id in report.failed:
            return "failed"
        return "finished" if has_finished(spec, records) else "pending"

    runs = [
        {
            "run_id": s.run_id,
            "task": s.task,
            "variant": s.variant,
            "seed": s.seed,
            "total_env_steps": s.config.learner.total_env_steps,
            "status": status(s),
            "error": report.failed.get(s.run_id),
        }
        for s in specs
    ]
    configs = {s.run_id: to_dict(s.config) for s in specs}
    path = output_dir / "suite.json"
    with folder_lock(output_dir):
        earlier_runs, earlier_configs = _earlier_slices(path, suite, specs)
        plan = {
            "suite": suite.name,
            "description": suite.description,
            "cost": suite.cost,
            "score_mode": suite.score_mode,
            "runs": earlier_runs + runs,
            "configs": {**earlier_configs, **configs},
        }
        write_text_whole(path, json.dumps(plan, indent=2, default=str))


def _earlier_slices(path: Path, suite: Suite, specs: list[RunSpec]) -> tuple[list, dict]:
    """The runs and configs that an earlier slice's suite.json holds and `specs` do not."""
    if not path.is_file():
        return [], {}
    earlier = json.loads(path.read_text())
    if earlier.get("suite") != suite.name:
        return [], {}
    planned = {s.run_id for s in specs}
    runs = [r for r in earlier.get("runs", []) if r["run_id"] not in planned]
    configs = {k: v for k, v in earlier.get("configs", {}).items() if k not in planned}
    return runs, configs
