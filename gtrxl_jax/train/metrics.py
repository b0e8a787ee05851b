"""Training metrics: TensorBoard events, metrics.jsonl, progress bar, summary, actor telemetry.

Files in the run's log_dir:
  config.json     the run's config
  metrics.jsonl   one JSON record per log interval: update, env_steps, sps, episode_return,
                  episode_length, episodes, success (tasks that report it; per task too when
                  there are several), the learner's losses, entropy, grad_norm,
                  update_norm, param_norm, policy_lag_mean/max (updates), popart_mu and
                  popart_sigma (with loss.popart; popart_mu/<task> and popart_sigma/<task>
                  per task when there are several), learner_wait_s
                  (mean seconds per update the learner waited for trajectories),
                  actor_wait_s (seconds the actors waited for parameters or queue space in
                  the interval, summed over actor threads), actor_params_wait_s (the part
                  of it spent waiting for parameters), actor_sps (env steps per second of
                  all actors, over the interval or, if it is shorter, the last 2 s),
                  queue_depth, time (Unix seconds when the record was written), ... (null
                  where a value is undefined, e.g. no episode ended in the interval).
                  Episodes are those that ended in the consumed batches.
  events.out.*    the same scalars as TensorBoard events, against env_steps
  summary.json    the end-of-run summary with the evaluation results
With run.wandb=true the records (against env_steps), the summary and the config also go to
Weights & Biases (`WandbSink`).
"""

import collections
import contextlib
import json
import logging
import math
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import tensorboardX
import tqdm

from gtrxl_jax.config import ConfigError, TrainConfig, to_dict
from gtrxl_jax.envs.episodes import EpisodeTotals
from gtrxl_jax.files import write_text_whole
from gtrxl_jax.strict_json import strict_json
from gtrxl_jax.train.nonfinite import SKIP_FLAGS, was_skipped

logger = logging.getLogger(__name__)


class MetricsWriteError(RuntimeError):
    """The run's metrics could not be written (a full disk, an unwritable folder)."""


@contextlib.contextmanager
def _writing(path: Path):
    """Turn an OSError while writing `path` into a MetricsWriteError that says what to do."""
    try:
        yield
    except OSError as error:
        raise MetricsWriteError(
            f"Cannot write {path}: {error}. Free disk space or make the folder writable, then "
            "continue the run with run.resume=true (it stopped after a final checkpoint, "
            "where that could be written)."
        ) from error


def keep_records_up_to(path: Path, update: int) -> dict[str, Any]:
    """Drop the records of metrics.jsonl after `update`, and any line that is not a record.

    A run killed after its last checkpoint logged updates that its resumed run does again;
    without this they would appear twice.

    Returns:
      The last record kept ({} if none).
    """
    kept, last = [], {}
    for line in path.read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("update", math.inf) <= update:
            kept.append(line + "\n")
            last = record
    write_text_whole(path, "".join(kept))
    return last


def totals_by_task(episodes: list) -> dict[str, EpisodeTotals]:
    """(task, Episode) pairs as each task's EpisodeTotals."""
    by_task: dict[str, list] = defaultdict(list)
    for task, episode in episodes:
        by_task[task].append(episode)
    return {task: EpisodeTotals.of(group) for task, group in by_task.items()}


def episode_metrics(totals: dict[str, EpisodeTotals], tasks: tuple[str, ...],
                    has_success: bool) -> dict:
    """Mean return, length and success of the episodes of each task, and of all of them.

    Returns:
      {"episodes", "episode_return", "episode_length"} (+ "success" where the task reports
      it), NaN where no episode ended; with several tasks also "<key>/<task>" entries.
    """
    def summary(total: EpisodeTotals) -> dict:
        values = total.summary()
        if not has_success:
            del values["success"]
        values["episodes"] = float(values["episodes"])
        return values

    metrics = summary(sum(totals.values(), EpisodeTotals()))
    if len(tasks) > 1:
        for task in tasks:
            for key, value in summary(totals.get(task, EpisodeTotals())).items():
                metrics[f"{key}/{task}"] = value
    return metrics


WANDB_MISSING = ("run.wandb=true needs the wandb package, which is not installed: pip install "
                 "wandb (or the package's extra, gtrxl_jax[wandb]), or set run.wandb=false.")


class WandbSink:
    """Sends a run's metrics records and summary to Weights & Biases (run.wandb=true).

    wandb is imported only here, for the runs that ask for it, and its own settings apply:
    WANDB_MODE=offline keeps the run on disk, WANDB_DIR says where (default: the working
    directory). Records are plotted against env_steps, as in the TensorBoard events. A
    resumed run (run.resume=true) is a new W&B run of the same name. Runs trained in one
    process (seeds trained together) each have a W&B run of their own.
    """

    def __init__(self, config: TrainConfig):
        """Start the W&B run (named after run.log_dir), logging the config.

        Raises:
          ConfigError: the wandb package is not installed, or the W&B run cannot start
            (e.g. not logged in).
        """
        try:
            import wandb
        except ImportError as error:
            raise ConfigError(WANDB_MISSING) from error
        try:
            # console="off": the progress bar's redraws would fill W&B's copy of the console.
            # reinit="create_new": another run of this process (a seed trained beside this
            # one) keeps its own W&B run, instead of this one joining or finishing it.
            self._run = wandb.init(
                project=config.run.wandb_project, name=Path(config.run.log_dir).name,
                config=to_dict(config), settings=wandb.Settings(console="off"),
                reinit="create_new")
        except Exception as error:  # wandb raises several types (no API key, no network)
            reason = str(error).rstrip(".")
            raise ConfigError(
                f"run.wandb=true, but the W&B run could not start: {type(error).__name__}: "
                f"{reason}. Log in with `wandb login`, set WANDB_MODE=offline to log to disk "
                "only, or set run.wandb=false.") from error
        self._run.define_metric("env_steps")
        self._run.define_metric("*", step_metric="env_steps")

    def write(self, record: dict[str, Any]) -> None:
        """Log one metrics record (its finite values; W&B keeps its own time)."""
        self._run.log({key: value for key, value in record.items()
                       if key != "time" and math.isfinite(value)})

    def write_summary(self, summary: dict) -> None:
        """Put the end-of-run summary into the W&B run's summary."""
        self._run.summary.update(strict_json(summary))

    def close(self) -> None:
        """Finish the W&B run.

        wandb's service may still be writing an offline run's file after this; the file is
        complete once the process ends (or after `wandb.teardown()`).
        """
        self._run.finish()


class MetricsLogger:
    """Collects per-update metrics and episodes; writes one record per log interval."""

    def __init__(
        self,
        log_dir: str,
        config: TrainConfig,
        *,
        tasks: tuple[str, ...],
        has_success: bool,
        start_env_steps: int,
        start_update: int = 0,
        enabled: bool = True,
    ):
        """Open the run's files (appending to a resumed run's metrics).

        Args:
          log_dir: the run's folder (created if needed).
          config: the run's config, saved as config.json.
          tasks: the task names, for per-task episode metrics.
          has_success: whether the tasks report success.
          start_env_steps: the env steps already done (non-zero when resuming).
          start_update: the update the run starts from: a resumed run keeps the records of
            metrics.jsonl up to it and drops later ones; a fresh run (0) starts the file anew.
          enabled: write files, show the progress bar and send to W&B (only process 0 of a
            multi-process run does).

        Raises:
          ConfigError: run.wandb=true and W&B cannot be used (see `WandbSink`); nothing is
            written then.
          MetricsWriteError: the run's files cannot be written.
        """
        self.log_dir = Path(log_dir)
        self._tasks = tasks
        self._has_success = has_success
        self._enabled = enabled
        # Per key, the sum and number of the values it averages in the interval.
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)
        self._count = 0
        self._episodes: dict[str, EpisodeTotals] = {}
        self._last_time = time.monotonic()
        self._last_env_steps = start_env_steps
        self.latest: dict[str, Any] = {}
        self._writer = None
        self._jsonl = None
        self._progress = None
        self._wandb = None
        self._jsonl_path = self.log_dir / "metrics.jsonl"
        if enabled:
            if config.run.wandb:
                self._wandb = WandbSink(config)
            with _writing(self.log_dir):
                self.log_dir.mkdir(parents=True, exist_ok=True)
                (self.log_dir / "config.json").write_text(json.dumps(to_dict(config), indent=2))
                if start_update > 0 and self._jsonl_path.is_file():
                    # A session that logs nothing (a finished run resumed) keeps it as latest.
                    self.latest = keep_records_up_to(self._jsonl_path, start_update)
                if start_update == 0:  # a fresh start: no curve of an earlier attempt stays
                    for stale in self.log_dir.glob("events.out.tfevents.*"):
                        stale.unlink()
                self._jsonl = open(self._jsonl_path, "a" if start_update > 0 else "w")  # noqa: SIM115
                # A resumed run's TensorBoard curves drop what the stopped session logged
                # after its checkpoint, as metrics.jsonl does (x axis: env steps).
                self._writer = tensorboardX.SummaryWriter(
                    str(self.log_dir),
                    purge_step=start_env_steps + 1 if start_update > 0 else None)
            self._progress = tqdm.tqdm(
                total=config.learner.total_env_steps, initial=start_env_steps, unit="step",
                unit_scale=True, dynamic_ncols=True, disable=not config.run.progress,
                desc=",".join(config.env.tasks))

    @property
    def pending_updates(self) -> int:
        """Updates added since the last record was written."""
        return self._count

    def add_update(self, metrics: dict[str, float], episodes: dict[str, EpisodeTotals],
                   env_steps: int) -> None:
        """Accumulate one update's metrics and the episodes that ended in its batch.

        Args:
          metrics: the learner's metrics (host floats).
          episodes: each task's totals of the episodes that ended in the update's
            trajectories (`totals_by_task` of (task, Episode) pairs).
          env_steps: env steps consumed so far (advances the progress bar).
        """
        skipped = was_skipped(metrics)
        for key, value in metrics.items():
            counted = not skipped or key in SKIP_FLAGS
            self._sums[key] += float(value) if counted else 0.0
            self._counts[key] += int(counted)
        self._count += 1
        for task, totals in episodes.items():
            self._episodes[task] = self._episodes.get(task, EpisodeTotals()) + totals
        if self._progress is not None:
            self._progress.update(env_steps - self._progress.n)

    def write(self, update: int, env_steps: int, extra: dict[str, float]) -> dict[str, Any]:
        """Write one record: the interval's averages, episodes, throughput and `extra`.

        Each learner metric is averaged over the interval's updates that were not skipped,
        so that one skipped update's NaN loss does not hide the others' (NaN when every
        update was skipped); `nonfinite_loss`, `nonfinite_grads` and `nonfinite_params`
        average over all of them, to the share skipped.

        Returns:
          The record (NaN for undefined values).
        """
        now = time.monotonic()
        elapsed = max(now - self._last_time, 1e-9)
        record: dict[str, Any] = {
            "update": update,
            "env_steps": env_steps,
            "sps": (env_steps - self._last_env_steps) / elapsed,
            "updates_per_s": self._count / elapsed,
            "time": time.time(),
        }
        record.update(episode_metrics(self._episodes, self._tasks, self._has_success))
        record.update({key: self._sums[key] / count if count else math.nan
                       for key, count in self._counts.items()})
        record.update(extra)
        self._sums.clear()
        self._counts.clear()
        self._count = 0
        self._episodes = {}
        self._last_time, self._last_env_steps = now, env_steps
        self.latest = record
        if self._enabled:
            with _writing(self._jsonl_path):
                self._jsonl.write(
                    json.dumps(strict_json(record)) + "\n")
                self._jsonl.flush()
            for key, value in record.items():
                if key not in ("update", "env_steps", "time") and math.isfinite(value):
                    self._writer.add_scalar(key, value, env_steps)
            self._writer.flush()
            if self._wandb is not None:
                self._wandb.write(record)
            self._progress.set_postfix(self._postfix(record), refresh=False)
        logger.debug("update %d: %s", update, record)
        return record

    def _postfix(self, record: dict) -> dict:
        postfix = {"return": f"{record['episode_return']:.3g}"}
        if self._has_success:
            postfix["success"] = f"{record['success']:.0%}" if math.isfinite(
                record["success"]) else "nan"
        postfix["loss"] = f"{record.get('loss', math.nan):.3g}"
        return postfix

    def write_summary(self, summary: dict) -> None:
        """Save summary.json (and send it to W&B) and log it."""
        if not self._enabled:
            return
        text = json.dumps(strict_json(summary), indent=2)
        with _writing(self.log_dir / "summary.json"):
            write_text_whole(self.log_dir / "summary.json", text)
        if self._wandb is not None:
            self._wandb.write_summary(summary)
        logger.info("Summary (%s):\n%s", self.log_dir / "summary.json", text)

    def close(self) -> None:
        """Flush and close the files, the progress bar and the W&B run."""
        if self._enabled:
            self._progress.close()
            self._writer.close()
            if self._wandb is not None:
                self._wandb.close()
            try:
                self._jsonl.close()
            except OSError as error:  # every record was flushed: this repeats a reported error
                logger.warning("Closing %s failed: %s", self._jsonl_path, error)


class ActorMonitor:
    """Actor-side figures for each metrics record, over the interval since the last one.

    actor_sps is the exception: over an interval shorter than ACTOR_SPS_WINDOW_S it is taken
    over the last ACTOR_SPS_WINDOW_S instead. An actor process reports its counters a few
    times a second (actor_process.STATS_INTERVAL_S), so a shorter interval could see none of
    its steps, or two reports' worth. Until the window has passed since the first read, a
    read that sees no new steps repeats the last figure: no report has come in yet, and a 0
    would read as a stall.
    """

    ACTOR_SPS_WINDOW_S = 2.0

    def __init__(self, actors: list, queues: list):
        """Watch these actors (`Actor`s or `ActorProcess`es) and their `TrajectoryQueue`s."""
        self._actors, self._queues = actors, queues
        self._last_wait_s = self._last_params_wait_s = 0.0
        self._created = (time.monotonic(), 0)
        self._step_reads = collections.deque()  # (time, env steps) of the recent reads
        self._last_sps = 0.0

    def read(self) -> dict[str, float]:
        """Queue depth now; actors' waiting time and env steps per second since the last read."""
        wait_s = sum(actor.stats.wait_s for actor in self._actors)
        params_wait_s = sum(actor.stats.params_wait_s for actor in self._actors)
        env_steps = sum(actor.stats.env_steps for actor in self._actors)
        now = time.monotonic()
        reads = self._step_reads
        reads.append((now, env_steps))
        while len(reads) > 2 and now - reads[1][0] >= self.ACTOR_SPS_WINDOW_S:
            reads.popleft()  # reads[0]: the latest read at least the window old (or the first)
        # The first read counts from the start; later ones never reach back before the first
        # read, so the run's start-up (compiling, before any record) does not dilute them.
        start_time, start_steps = reads[0] if len(reads) > 1 else self._created
        if env_steps > start_steps or now - start_time >= self.ACTOR_SPS_WINDOW_S:
            self._last_sps = (env_steps - start_steps) / max(now - start_time, 1e-9)
        record = {
            "queue_depth": float(sum(queue.qsize() for queue in self._queues)),
            "actor_wait_s": wait_s - self._last_wait_s,
            "actor_params_wait_s": params_wait_s - self._last_params_wait_s,
            "actor_sps": self._last_sps,
        }
        self._last_wait_s, self._last_params_wait_s = wait_s, params_wait_s
        return record
