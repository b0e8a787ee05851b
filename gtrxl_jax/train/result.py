"""How every run ends, whichever loop trained it: evaluation, summary.json, the TrainResult."""

import dataclasses
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax

from gtrxl_jax.config import TrainConfig
from gtrxl_jax.train.checkpoint import Progress
from gtrxl_jax.train.metrics import MetricsLogger, MetricsWriteError

Saved = TypeVar("Saved")


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
      params: the final parameters (host arrays).
      update: learner updates done (the parameter version).
      env_steps: environment steps the learner consumed.
      wall_clock_s: seconds of training (from the actors' start, or the first update's
        dispatch, to the end), over every session of a resumed run.
      sps: env steps per second of this session.
      interrupted: the run stopped on SIGINT / SIGTERM before its end.
      eval: {"greedy": {...}, "sampled": {...}} evaluation results ({} if skipped).
      metrics: the last metrics record.
      log_dir: the run's folder.
    """

    params: Any
    update: int
    env_steps: int
    wall_clock_s: float
    sps: float
    interrupted: bool
    eval: dict
    metrics: dict
    log_dir: str


def save_then_raise(
    failure: BaseException | None,
    save: Callable[[], Saved],
    loggers: Sequence[MetricsLogger],
    *,
    update: int,
    env_steps: int,
    extra: Callable[[], dict] = dict,
) -> Saved | None:
    """End a stopped loop: its final checkpoint, its last metrics, then its failure, if any.

    After a failure only a single process saves: a multi-process save waits for every
    process, and the failed one may never come. After a failure to write metrics, none
    are written again.

    Args:
      failure: what stopped the loop (None: its end, or a signal).
      save: writes the final checkpoint(s); returns what the caller needs of them.
      loggers: the run's metrics loggers; each writes its updates not yet written.
      update: the update the loop ended at.
      env_steps: the env steps it ended at.
      extra: -> the extra metrics of that record (the actors' counters).

    Returns:
      What `save` returned (None where it was not called).

    Raises:
      `failure`, after the checkpoint and the metrics.
    """
    saved = None
    if failure is None or jax.process_count() == 1:
        saved = save()
    if not isinstance(failure, MetricsWriteError):
        for metrics_logger in loggers:
            if metrics_logger.pending_updates:
                metrics_logger.write(update, env_steps, extra())
    if failure is not None:
        raise failure
    return saved


def finish(
    config: TrainConfig,
    metrics_logger: MetricsLogger,
    *,
    params: Any,
    nonfinite_updates: int,
    update: int,
    start: Progress,
    end: Progress,
    interrupted: bool,
    evaluate: Callable[[Any], dict],
    is_main_process: bool,
) -> TrainResult:
    """Evaluate the final parameters (unless stopped by a signal), write summary.json.

    Args:
      config: the run's config.
      metrics_logger: the run's logger (its latest record goes into the summary).
      params: the final parameters (host arrays).
      nonfinite_updates: updates skipped over the whole run.
      update: the update the run ended at.
      start: where this session started (a resumed run's checkpoint, else zero).
      end: where it ended.
      interrupted: a signal stopped the run.
      evaluate: params -> {"greedy": ..., "sampled": ...}, the loop's own evaluation.
      is_main_process: only process 0 evaluates.
    """
    eval_results = {}
    if is_main_process and config.run.eval_episodes > 0 and not interrupted:
        eval_results = evaluate(params)
    sps = (end.env_steps - start.env_steps) / max(end.wall_clock_s - start.wall_clock_s, 1e-9)
    metrics_logger.write_summary({
        "eval": eval_results,
        "env_steps": end.env_steps,
        "updates": update,
        "wall_clock_s": end.wall_clock_s,
        "sps": sps,
        "interrupted": interrupted,
        "nonfinite_updates": nonfinite_updates,
        "last_metrics": metrics_logger.latest,
    })
    return TrainResult(params=params, update=update, env_steps=end.env_steps,
                       wall_clock_s=end.wall_clock_s, sps=sps, interrupted=interrupted,
                       eval=eval_results, metrics=metrics_logger.latest,
                       log_dir=config.run.log_dir)
