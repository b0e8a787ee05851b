"""How every run ends, whichever loop trained it: evaluation, summary.json, the TrainResult."""

import dataclasses
from collections.abc import Callable
from typing import Any

from gtrxl_jax.config import TrainConfig
from gtrxl_jax.train.metrics import MetricsLogger


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
      params: the final parameters (host arrays).
      update: learner updates done (the parameter version).
      env_steps: environment steps the learner consumed.
      wall_clock_s: seconds from the start of training (actors started, or first update
        dispatched) to its end.
      sps: env_steps of this session / wall_clock_s.
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
    env_steps: int,
    start_env_steps: int,
    wall_clock_s: float,
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
      env_steps: the env steps it ended at.
      start_env_steps: where this session started (a resumed run's checkpoint).
      wall_clock_s: this session's training time.
      interrupted: a signal stopped the run.
      evaluate: params -> {"greedy": ..., "sampled": ...}, the loop's own evaluation.
      is_main_process: only process 0 evaluates.
    """
    eval_results = {}
    if is_main_process and config.run.eval_episodes > 0 and not interrupted:
        eval_results = evaluate(params)
    sps = (env_steps - start_env_steps) / max(wall_clock_s, 1e-9)
    metrics_logger.write_summary({
        "eval": eval_results,
        "env_steps": env_steps,
        "updates": update,
        "wall_clock_s": wall_clock_s,
        "sps": sps,
        "interrupted": interrupted,
        "nonfinite_updates": nonfinite_updates,
        "last_metrics": metrics_logger.latest,
    })
    return TrainResult(params=params, update=update, env_steps=env_steps,
                       wall_clock_s=wall_clock_s, sps=sps, interrupted=interrupted,
                       eval=eval_results, metrics=metrics_logger.latest,
                       log_dir=config.run.log_dir)
