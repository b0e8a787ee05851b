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
from collections.abc import Iterator
from pathlib import Path

from gtrxl_jax.bench.core import config_fields
from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.config import AgentConfig, TrainConfig, apply_overrides
from gtrxl_jax.nn.config import GTrXLConfig
from gtrxl_jax.train.layout import plan_layout
from gtrxl_jax.train.loop import train

# Only the final checkpoint is written (after the timed window): a save inside the window
# would be timed as learner work.
_NO_CHECKPOINT_UPDATES = 10**9


def train_config(session: Session, task: str, core: str, log_dir: str) -> TrainConfig:
    """The TrainConfig of one end-to-end run.

    The workload sets the transformer, T and B; `session.e2e` the task's budget, the number
    of environments and further overrides; the measurement's own settings come last (a
    record per update in `log_dir`, a checkpoint only at the end, no evaluation, no progress
    bar).
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
        f"run.log_dir={log_dir}",
        "run.log_interval_updates=1",
        f"run.checkpoint_interval_updates={_NO_CHECKPOINT_UPDATES}",
        "run.eval_episodes=0",
        "run.progress=false",
    ])


def check_budget(config: TrainConfig, warmup: int) -> None:
    """Raise ValueError unless the run has an update after `warmup` (>= 1) warm-up updates."""
    if warmup < 1:
        raise ValueError(f"e2e needs warmup >= 1 (the first update compiles), got {warmup}.")
    updates = plan_layout(config).total_updates
    if updates <= warmup:
        steps = config.learner.trajectory_len * config.learner.batch_size
        raise ValueError(
            f"e2e: {config.learner.total_env_steps} env steps make {updates} update(s) of "
            f"{steps} steps, none after the {warmup} warm-up update(s); raise the budget "
            f"above {warmup * steps} steps (--e2e-steps) or lower --warmup.")


def steady_state(records: list[dict], warmup: int, actor_threads: int) -> dict:
    """Steady-state figures of a run from its metrics records, after `warmup` updates.

    Args:
      records: the run's metrics.jsonl records, one per update (updates 1, 2, ...).
      warmup: updates left out (>= 1; the window starts when update `warmup` ended).
      actor_threads: the run's actor threads (the records sum their waits).

    Returns:
      The figures of the module docstring (sps, wait shares, idle side, ...).
    """
    if [r["update"] for r in records] != list(range(1, len(records) + 1)):
        raise ValueError("e2e needs one metrics record per update (run.log_interval_updates=1).")
    if not 1 <= warmup < len(records):
        raise ValueError(f"warmup={warmup} leaves no update of the {len(records)} recorded.")
    steady = records[warmup:]
    steps = [r["env_steps"] - prev["env_steps"]
             for prev, r in zip(records[warmup - 1 : -1], steady, strict=True)]
    seconds = [n / r["sps"] for n, r in zip(steps, steady, strict=True)]
    window_s = sum(seconds)
    learner_wait = [r["learner_wait_s"] for r in steady]
    actor_wait = sum(r["actor_wait_s"] for r in steady)
    params_wait = sum(r["actor_params_wait_s"] for r in steady)
    learner_share = sum(learner_wait) / window_s
    params_share = params_wait / (window_s * actor_threads)
    queue_share = (actor_wait - params_wait) / (window_s * actor_threads)
    per_update_sps = [r["sps"] for r in steady]
    return {
        "steady_updates": len(steady),
        "steady_s": window_s,
        "sps": sum(steps) / window_s,
        "sps_median": statistics.median(per_update_sps),
        "sps_min": min(per_update_sps),
        "sps_max": max(per_update_sps),
        "actor_sps_median": statistics.median(r["actor_sps"] for r in steady),
        "learner_wait_share": learner_share,
        "actor_params_wait_share": params_share,
        "actor_queue_wait_share": queue_share,
        "idle_side": "learner" if learner_share > params_share + queue_share else "actors",
        "learner_busy_median_s": statistics.median(
            s - w for s, w in zip(seconds, learner_wait, strict=True)),
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


def measure_run(session: Session, task: str, core: str) -> Record:
    """Trains `core` on `task` for the session's budget and reports its steady state."""
    with tempfile.TemporaryDirectory(prefix="gtrxl-e2e-") as log_dir:
        config = train_config(session, task, core, log_dir)
        check_budget(config, session.warmup)
        load_start = os.getloadavg()[0]
        start = time.time()
        result = train(config)
        train_s = time.time() - start
        if result.interrupted:
            raise KeyboardInterrupt(f"e2e: the {task} run with core {core} was interrupted.")
        load_end = os.getloadavg()[0]
        lines = (Path(log_dir) / "metrics.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    return {
        "kind": "e2e",
        **run_fields(config),
        "overrides": list(session.e2e.overrides),
        "env_steps": result.env_steps,
        "updates": result.update,
        "warmup_updates": session.warmup,
        "time_to_first_update_s": records[0]["time"] - start,
        "train_s": train_s,
        **steady_state(records, session.warmup, config.learner.num_actor_threads),
        "load_avg_start": load_start,
        "load_avg_end": load_end,
    }


@register("e2e")
def e2e(session: Session) -> Iterator[Record]:
    """Training runs per task and core: steady env steps/s, wait shares, time to first update."""
    for task in session.e2e.tasks:
        for core in session.e2e.cores:
            yield measure_run(session, task, core)
