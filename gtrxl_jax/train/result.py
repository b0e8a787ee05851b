"""How every run ends, whichever loop trained it: evaluation, summary.json, the TrainResult."""

import dataclasses
from collections.abc import Callable
from typing import Any

from gtrxl_jax.config import TrainConfig
from gtrxl_jax.train.checkpoint import Progress
from gtrxl_jax.train.metrics import MetricsLogger


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
