"""On-device (Anakin) training against the actor-learner: env steps/s and time to solve.

on_device trains the main job's T-maze config (`session.on_device`: by default
experiments/configs/tmaze.py, and tmaze_on_device.py, the same task, model and budget with
learner.loop=on_device) once on each path, in this order, logging every update, then sweeps
the number of environments on device. Every record has `path` ("actor_learner" or
"on_device") and `sps`, and the float32 matmul ceiling measured in the same run
(`ceiling_gflop_per_s`, from "ceiling", which runs first):

- kind "throughput", one per path: the steady env steps/s of its run, over the updates
  after the first `session.warmup` (start-up and compiles left out), as e2e computes it
  (`e2e.steady_throughput`), and `sps_vs_actor_learner`, its ratio to the actor-learner's
  figure of the same run (1 for the actor-learner itself).
- kind "time_to_solve", one per path, from the same run: `seconds_to_95`, the wall-clock
  from the call of train() (configuration checks, environments, compiles included:
  `seconds_to_95_includes_compile`) to the first metrics record with success >= 0.95, with
  its `env_steps_to_95` and `update_to_95` (all None, and `solved` false, if no record got
  there within the budget); `sps`, the run's env steps over its training loop's seconds
  (TrainResult.sps), and its final and best success. A record's success is that of the
  episodes which ended in its update, so one lucky update can cross the line.
- kind "num_envs", one per N of the sweep, on device only: the update of the on-device
  config with env.num_envs = learner.batch_size = N, compiled (`compile_s`) and then timed
  as `update` times the learner's (median of --repeats calls after --warmup); `sps` is
  T * N over the median, and `cpu_cores_busy` the host CPU seconds per wall-clock second of
  an update, which stops growing with N where the CPU is saturated. An N whose buffers do
  not fit in free memory is `skipped`.

The training runs take the main job's budget (500k env steps), minutes each, so on_device
is not in gtrxl-bench's default set. `on_device_envs` is the sweep alone (seconds per N, for
a machine whose time is short, such as a lent GPU). The workload (--config) sizes only the
ceiling.
"""

import tempfile
import time
from collections.abc import Iterator

import jax

from gtrxl_jax.bench.ceiling import ceiling_gflops
from gtrxl_jax.bench.core import too_big
from gtrxl_jax.bench.e2e import (
    LoggedRun,
    check_budget,
    logged_run_overrides,
    run_fields,
    steady_throughput,
    train_logged,
)
from gtrxl_jax.bench.registry import Record, Session, register
from gtrxl_jax.bench.timing import time_calls
from gtrxl_jax.config import TrainConfig, load_config
from gtrxl_jax.train import builder, placement
from gtrxl_jax.train.on_device import OnDevice

SUCCESS_THRESHOLD = 0.95
PATHS = ("actor_learner", "on_device")


def path_config(session: Session, path: str, overrides: list[str]) -> TrainConfig:
    """The config of `path` ("actor_learner" or "on_device") with the session's overrides.

    The session's budget (if set) comes first, its overrides next, `overrides` last.
    """
    bench = session.on_device
    file = bench.on_device_config if path == "on_device" else bench.actor_learner_config
    budget = [] if bench.env_steps is None else [f"learner.total_env_steps={bench.env_steps}"]
    config = load_config(file, [*budget, *bench.overrides, *overrides])
    if builder.resolve_loop(config) != path:
        raise ValueError(f"{file} trains with learner.loop={config.learner.loop!r}, "
                         f"not {path!r}.")
    return config


def sweep_config(session: Session, num_envs: int) -> TrainConfig:
    """The on-device config with N environments, a batch of all of them (the N sweep's)."""
    return path_config(session, "on_device", [
        f"env.num_envs={num_envs}",
        f"learner.batch_size={num_envs}",
        f"run.log_dir={tempfile.gettempdir()}",  # checked for writing, never written
    ])


def time_to_solve(run: LoggedRun, threshold: float = SUCCESS_THRESHOLD) -> dict:
    """When the run's success first reached `threshold`, from the call of train().

    Returns:
      solved, seconds_to_95, env_steps_to_95, update_to_95 (None where never reached),
      final_success (the last record's that has one) and best_success.
    """
    successes = [(r, r["success"]) for r in run.records if r.get("success") is not None]
    first = next((r for r, success in successes if success >= threshold), None)
    return {
        "success_threshold": threshold,
        "solved": first is not None,
        "seconds_to_95": first["time"] - run.start if first else None,
        "seconds_to_95_includes_compile": True,
        "env_steps_to_95": first["env_steps"] if first else None,
        "update_to_95": first["update"] if first else None,
        "final_success": successes[-1][1] if successes else None,
        "best_success": max((s for _, s in successes), default=None),
    }


def measure_num_envs(session: Session, num_envs: int) -> Record:
    """Compiles and times the on-device update of the on-device config with N environments."""
    config = sweep_config(session, num_envs)
    layout, spec = builder.check_config(config)
    agent = builder.make_agent(config, spec, num_tasks=1)
    program = OnDevice.for_config(config, agent, layout,
                                  placement.learner_devices(config.learner))
    runner = program.init(jax.random.PRNGKey(config.run.seed), config.run.seed)
    start = time.perf_counter()
    update = program.compile_update(runner).lower(runner).compile()
    record = {
        "kind": "num_envs",
        "path": "on_device",
        **run_fields(config),
        "compile_s": time.perf_counter() - start,
    }
    if reason := too_big(update):
        return {**record, "sps": None, "skipped": reason}

    def step():
        nonlocal runner
        runner, metrics = update(runner)  # donates the previous runner state
        return runner, metrics

    timing = time_calls(step, session.repeats, session.warmup)
    return {
        **record,
        "sps": config.learner.trajectory_len * num_envs / timing.median_s,
        "cpu_cores_busy": timing.cpu_median_s / timing.median_s,
        **timing.fields(),
    }


def machine_fields(session: Session) -> dict:
    """The float32 matmul ceiling measured earlier in the session, for every record."""
    return {"ceiling_gflop_per_s": ceiling_gflops(session, "float32")}


def check_sweep_configs(session: Session) -> None:
    """Builds the config of each N of the sweep (ConfigError for a bad --on-device-set)."""
    for num_envs in session.on_device.num_envs:
        sweep_config(session, num_envs)


def check_path_configs(session: Session) -> None:
    """Builds both paths' configs and the sweep's.

    Raises ConfigError for a bad --on-device-set, ValueError for a budget with no update
    after the warm-up ones.
    """
    for path in PATHS:
        check_budget(path_config(session, path, []), session.warmup, "--on-device-steps")
    check_sweep_configs(session)


@register("on_device_envs", requires=("ceiling",), check=check_sweep_configs)
def on_device_envs(session: Session) -> Iterator[Record]:
    """The on-device T-maze update's env steps/s against the number of environments."""
    machine = machine_fields(session)
    for num_envs in session.on_device.num_envs:
        yield {**measure_num_envs(session, num_envs), **machine}


@register("on_device", requires=("ceiling",), check=check_path_configs)
def on_device(session: Session) -> Iterator[Record]:
    """T-maze on device against the actor-learner: steady env steps/s, time to 95%, N sweep."""
    machine = machine_fields(session)
    sps_by_path = {}
    for path in PATHS:
        run = train_logged(
            lambda log_dir, path=path: path_config(session, path, logged_run_overrides(log_dir)),
            session.warmup, option="--on-device-steps")
        fields = {
            "path": path,
            **run_fields(run.config),
            "overrides": list(session.on_device.overrides),
            **run.fields(),
        }
        throughput = steady_throughput(run.records, session.warmup)
        sps_by_path[path] = throughput["sps"]
        yield {
            "kind": "throughput",
            **fields,
            "warmup_updates": session.warmup,
            **throughput,
            "sps_vs_actor_learner": throughput["sps"] / sps_by_path["actor_learner"],
            **machine,
        }
        yield {
            "kind": "time_to_solve",
            **fields,
            "sps": run.result.sps,
            "wall_clock_s": run.result.wall_clock_s,
            **time_to_solve(run),
            **machine,
        }
    yield from on_device_envs(session)
