"""End-to-end: environment steps per second of the whole actor-learner loop, and who waits.

e2e runs `gtrxl_jax.train.loop.train` once per task x core of `session.e2e`, with the
workload's transformer (layers, width, heads, memory, compute dtype; the torso stays
float32), unroll T and batch B, and reads the metrics.jsonl the loop writes, one record per
update. The first `session.warmup` updates (start-up, compilation, the actors' first
trajectories) are left out; over the updates after them, the steady state, it reports:

- sps: the window's env steps over its seconds (as the learner consumed them), with the
  median, min and max of the per-update figures;
- learner_wait_share: the fraction of the window the learner waited for trajectories;
- actor_params_wait_share, actor_queue_wait_share: the fraction of the actor threads' time
  spent waiting for parameters, and for space in the trajectory queue; a wait is counted
  when it ends, so one that began before the window counts whole;
- idle_side: the side that waited the larger share ("learner" or "actors");
- learner_busy_median_s: the median seconds per update the learner did not wait (the update,
  the batch's assembly and transfer, publishing the parameters, logging);
- learner_s_per_1k_frames: the same per 1,000 env steps (frames) of its updates, so that
  learners with other batch shapes, any other agent's included, compare directly;
- time_to_first_update_s: from the call of train() to the end of the first update
  (environments, initialisation, compiling the acting step and the update).

The load average before and after each run goes into its record: on a shared machine the
figures move with it. A run trains for minutes, so e2e is not in gtrxl-bench's default set.
"""

import dataclasses
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from gtrxl_jax.bench.core import config_fields
from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.config import AgentConfig, TrainConfig, apply_overrides
from gtrxl_jax.envs.registry import check_task_name
from gtrxl_jax.nn.config import GTrXLConfig
from gtrxl_jax.train.builder import resolve_loop
from gtrxl_jax.train.layout import plan_layout, plan_on_device_layout
from gtrxl_jax.train.loop import train
from gtrxl_jax.train.result import TrainResult

# Only the final checkpoint is written (after the timed window): a save inside the window
# would be timed as learner work.
_NO_CHECKPOINT_UPDATES = 10**9


def train_config(session: Session, task: str, core: str, log_dir: str) -> TrainConfig:
    """The TrainConfig of one end-to-end run.

    The workload sets the transformer, T and B; `session.e2e` the task's budget, the number
    of environments and further overrides; the measurement's own settings come last
    (`logged_run_overrides`).
    """
    workload, e2e = session.workload, session.e2e
    base = TrainConfig(agent=AgentConfig(core=core, transformer=workload.core))
    return apply_overrides(base, [
        f"env.task={task}",
        f"env.num_envs={e2e.num_envs or workload.batch}",
        f"learner.trajectory_len={workload.unroll}",
        f"learner.batch_size={workload.batch}",
        f"learner.total_env_steps={e2e.env_steps}",
        *e2e.overrides,
        *logged_run_overrides(log_dir),
    ])


def logged_run_overrides(log_dir: str) -> list[str]:
    """The overrides a measured training run ends with.

    A record per update in `log_dir`, a checkpoint only at the end (a save inside the timed
    window would be timed as learner work), no evaluation, no progress bar.
    """
    return [
        f"run.log_dir={log_dir}",
        "run.log_interval_updates=1",
        f"run.checkpoint_interval_updates={_NO_CHECKPOINT_UPDATES}",
        "run.eval_episodes=0",
        "run.progress=false",
    ]


def check_budget(config: TrainConfig, warmup: int, option: str = "--e2e-steps") -> None:
    """Raise ValueError unless the run has an update after `warmup` (>= 1) warm-up updates.

    `option` is the command-line option that sets the run's budget, named in the message.
    """
    if warmup < 1:
        raise ValueError(f"need warmup >= 1 (the first update compiles), got {warmup}.")
    plan = plan_on_device_layout if resolve_loop(config) == "on_device" else plan_layout
    updates = plan(config).total_updates
    if updates <= warmup:
        steps = config.learner.trajectory_len * config.learner.batch_size
        raise ValueError(
            f"{config.learner.total_env_steps} env steps make {updates} update(s) of "
            f"{steps} steps, none after the {warmup} warm-up update(s); raise the budget "
            f"above {warmup * steps} steps ({option}) or lower --warmup.")


def steady_window(records: list[dict], warmup: int) -> tuple[list[dict], list[int], list[float]]:
    """The records after `warmup` updates, with each one's env steps and seconds.

    Args:
      records: a run's metrics.jsonl records, one per update (updates 1, 2, ...).
      warmup: updates left out (>= 1; the window starts when update `warmup` ended).

    Returns:
      (the steady records, the env steps of each, the seconds of each).
    """
    if [r["update"] for r in records] != list(range(1, len(records) + 1)):
        raise ValueError("need one metrics record per update (run.log_interval_updates=1).")
    if not 1 <= warmup < len(records):
        raise ValueError(f"warmup={warmup} leaves no update of the {len(records)} recorded.")
    steady = records[warmup:]
    steps = [r["env_steps"] - prev["env_steps"]
             for prev, r in zip(records[warmup - 1 : -1], steady, strict=True)]
    seconds = [n / r["sps"] for n, r in zip(steps, steady, strict=True)]
    return steady, steps, seconds


def steady_throughput(records: list[dict], warmup: int) -> dict:
    """Env steps per second of a run after `warmup` updates (records as `steady_window`).

    Returns:
      steady_updates, steady_s (the window's seconds), sps (its env steps over its
      seconds), and the median, min and max of the per-update figures.
    """
    steady, steps, seconds = steady_window(records, warmup)
    per_update_sps = [r["sps"] for r in steady]
    return {
        "steady_updates": len(steady),
        "steady_s": sum(seconds),
        "sps": sum(steps) / sum(seconds),
        "sps_median": statistics.median(per_update_sps),
        "sps_min": min(per_update_sps),
        "sps_max": max(per_update_sps),
    }


def steady_state(records: list[dict], warmup: int, actor_threads: int) -> dict:
    """Steady-state figures of a run from its metrics records, after `warmup` updates.

    Args:
      records: the run's metrics.jsonl records, one per update (updates 1, 2, ...).
      warmup: updates left out (>= 1; the window starts when update `warmup` ended).
      actor_threads: the run's actor threads (the records sum their waits).

    Returns:
      The figures of the module docstring (sps, wait shares, idle side, ...).
    """
    steady, steps, seconds = steady_window(records, warmup)
    window_s = sum(seconds)
    learner_wait = [r["learner_wait_s"] for r in steady]
    busy = [s - w for s, w in zip(seconds, learner_wait, strict=True)]
    actor_wait = sum(r["actor_wait_s"] for r in steady)
    params_wait = sum(r["actor_params_wait_s"] for r in steady)
    learner_share = sum(learner_wait) / window_s
    params_share = params_wait / (window_s * actor_threads)
    queue_share = (actor_wait - params_wait) / (window_s * actor_threads)
    return {
        **steady_throughput(records, warmup),
        "actor_sps_median": statistics.median(r["actor_sps"] for r in steady),
        "learner_wait_share": learner_share,
        "actor_params_wait_share": params_share,
        "actor_queue_wait_share": queue_share,
        "idle_side": "learner" if learner_share > params_share + queue_share else "actors",
        "learner_busy_median_s": statistics.median(busy),
        "learner_s_per_1k_frames": statistics.median(
            1000 * b / n for b, n in zip(busy, steps, strict=True)),
        "queue_depth_mean": statistics.fmean(r["queue_depth"] for r in steady),
        "policy_lag_mean": statistics.fmean(r["policy_lag_mean"] for r in steady),
    }


def run_fields(config: TrainConfig) -> dict:
    """The configuration of a run as flat record fields."""
    core = config.agent.core_config()
    core_figures = (config_fields(core) if isinstance(core, GTrXLConfig)
                    else dataclasses.asdict(core))
    return {
        "task": config.env.task,
        "core": config.agent.core,
        **core_figures,
        "num_envs": config.env.num_envs,
        "groups_per_task": config.env.groups_per_task,
        "actor_threads": config.learner.num_actor_threads,
        "unroll": config.learner.trajectory_len,
        "batch": config.learner.batch_size,
        "reproducible": config.learner.reproducible,
        "env_steps_budget": config.learner.total_env_steps,
    }


@dataclasses.dataclass(frozen=True)
class LoggedRun:
    """A finished training run and the metrics it logged.

    Attributes:
      config: the run's config.
      result: what train() returned.
      records: its metrics.jsonl records, one per update.
      start: Unix seconds when train() was called (records' `time` is on the same clock).
      train_s: seconds train() took, start-up, compiles and the final checkpoint included.
      load_avg_start, load_avg_end: the 1-minute load average before and after.
    """

    config: TrainConfig
    result: TrainResult
    records: list[dict]
    start: float
    train_s: float
    load_avg_start: float
    load_avg_end: float

    def fields(self) -> dict:
        """The run's outcome as flat record fields (its config's come from `run_fields`)."""
        return {
            "env_steps": self.result.env_steps,
            "updates": self.result.update,
            "time_to_first_update_s": self.records[0]["time"] - self.start,
            "train_s": self.train_s,
            "load_avg_start": self.load_avg_start,
            "load_avg_end": self.load_avg_end,
        }


def train_logged(make_config: Callable[[str], TrainConfig], warmup: int,
                 option: str = "--e2e-steps") -> LoggedRun:
    """Trains `make_config(log_dir)` in a temporary log_dir and reads back its metrics.

    Args:
      make_config: log_dir -> the run's config (logging every update, see
        `logged_run_overrides`).
      warmup: updates the caller leaves out; the budget must leave one after them.
      option: the command-line option that sets the budget (named if it is too small).

    Raises:
      KeyboardInterrupt: a signal stopped the run.
    """
    with tempfile.TemporaryDirectory(prefix="gtrxl-bench-") as log_dir:
        config = make_config(log_dir)
        check_budget(config, warmup, option)
        load_start = os.getloadavg()[0]
        start = time.time()
        result = train(config)
        train_s = time.time() - start
        if result.interrupted:
            raise KeyboardInterrupt(f"the {config.env.task} run was interrupted.")
        load_end = os.getloadavg()[0]
        lines = (Path(log_dir) / "metrics.jsonl").read_text().splitlines()
    return LoggedRun(config, result, [json.loads(line) for line in lines], start, train_s,
                     load_start, load_end)


def measure_run(session: Session, task: str, core: str) -> Record:
    """Trains `core` on `task` for the session's budget and reports its steady state."""
    run = train_logged(lambda log_dir: train_config(session, task, core, log_dir),
                       session.warmup)
    return {
        "kind": "e2e",
        **run_fields(run.config),
        "overrides": list(session.e2e.overrides),
        **run.fields(),
        "warmup_updates": session.warmup,
        **steady_state(run.records, session.warmup, run.config.learner.num_actor_threads),
    }


def check_train_configs(session: Session) -> None:
    """Checks every task `e2e` would train and builds each run's config.

    Raises:
      ValueError: an unknown task (with close names), a budget with no update after the
        warm-up ones; ConfigError, a bad --e2e-set.
    """
    for task in session.e2e.tasks:
        check_task_name(task)
        for core in session.e2e.cores:
            check_budget(train_config(session, task, core, log_dir=tempfile.gettempdir()),
                         session.warmup)


@register("e2e", check=check_train_configs)
def e2e(session: Session) -> Iterator[Record]:
    """Training runs per task and core: steady env steps/s, wait shares, time to first update."""
    for task in session.e2e.tasks:
        for core in session.e2e.cores:
            yield measure_run(session, task, core)
