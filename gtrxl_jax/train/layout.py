"""How a run's batch is laid out over processes, actor threads, environment groups and devices.

    batch_size (global rows per update)
      = num_processes x local rows
    local rows
      = num_actor_threads x trajectories_per_update x env.num_envs      (one actor's trajectory
                                                                        has env.num_envs rows)
      = learner devices x rows per device
    env.num_envs = tasks x env.groups_per_task x envs per group

Every number is checked before any work starts, with a ConfigError that names the keys.
"""

import dataclasses

from gtrxl_jax.config import ConfigError, LossConfig, TrainConfig


@dataclasses.dataclass(frozen=True)
class Layout:
    """The derived sizes of a run.

    Attributes:
      tasks: the task names (env.task split at commas); task id = index.
      local_batch: rows per update on this process.
      trajectories_per_update: trajectories each actor contributes to one update.
      groups_per_task: environment groups per task in each actor (env.groups_per_task).
      envs_per_group: environments per group.
      steps_per_update: environment steps one update consumes, over all processes.
      total_updates: updates of the whole run (ceil(total_env_steps / steps_per_update)),
        for the learning-rate schedule.
    """

    tasks: tuple[str, ...]
    local_batch: int
    trajectories_per_update: int
    groups_per_task: int
    envs_per_group: int
    steps_per_update: int
    total_updates: int


def plan_layout(config: TrainConfig) -> Layout:
    """Derive and check the layout of a run (not the device count: see `check_devices`).

    Raises:
      ConfigError: naming the keys whose values do not fit together.
    """
    env, learner = config.env, config.learner
    if "batch_size" in env.options:
        raise ConfigError("env.options.batch_size is not for training runs: every recv must "
                          "return all of a group's environments; use env.groups_per_task to "
                          "overlap stepping with inference.")
    tasks = env.tasks
    if any(not task for task in tasks):
        raise ConfigError(f"env.task={env.task!r} has an empty task name.")
    if env.num_envs % (len(tasks) * env.groups_per_task):
        raise ConfigError(
            f"env.num_envs={env.num_envs} must be a multiple of the number of tasks in "
            f"env.task ({len(tasks)}) x env.groups_per_task ({env.groups_per_task}).")
    processes = config.distributed.num_processes
    if learner.batch_size % processes:
        raise ConfigError(f"learner.batch_size={learner.batch_size} must be a multiple of "
                          f"distributed.num_processes={processes}.")
    local_batch = learner.batch_size // processes
    rows_per_round = env.num_envs * learner.num_actor_threads
    if local_batch % rows_per_round:
        raise ConfigError(
            f"learner.batch_size / distributed.num_processes = {local_batch} rows per process "
            f"must be a multiple of env.num_envs x learner.num_actor_threads = {rows_per_round} "
            "(every actor thread contributes whole trajectories of env.num_envs rows).")
    groups_per_task = env.groups_per_task
    return Layout(
        tasks=tasks,
        local_batch=local_batch,
        trajectories_per_update=local_batch // rows_per_round,
        groups_per_task=groups_per_task,
        envs_per_group=env.num_envs // (len(tasks) * groups_per_task),
        steps_per_update=learner.steps_per_update,
        total_updates=learner.total_updates,
    )


def plan_on_device_layout(config: TrainConfig) -> Layout:
    """Derive and check the layout of an on-device run: every environment feeds every update.

    Raises:
      ConfigError: several tasks, options the on-device loop does not have, or a batch that
        is not the run's environments.
    """
    env, learner = config.env, config.learner
    tasks = env.tasks
    if len(tasks) > 1:
        raise ConfigError(f"env.task={env.task!r}: the on-device loop trains on one task; "
                          "use learner.loop=actor_learner for several.")
    if env.groups_per_task != 1 or learner.num_actor_threads != 1 or learner.actor_processes:
        raise ConfigError("env.groups_per_task, learner.num_actor_threads and "
                          "learner.actor_processes are actor-learner settings; leave them at "
                          "their defaults with learner.loop=on_device.")
    processes = config.distributed.num_processes
    if learner.batch_size != env.num_envs * processes:
        raise ConfigError(
            f"learner.batch_size={learner.batch_size} must be env.num_envs x "
            f"distributed.num_processes = {env.num_envs * processes}: on device every "
            f"environment feeds every update. Set learner.batch_size={env.num_envs * processes}.")
    return Layout(
        tasks=tasks,
        local_batch=env.num_envs,
        trajectories_per_update=1,
        groups_per_task=1,
        envs_per_group=env.num_envs,
        steps_per_update=learner.steps_per_update,
        total_updates=learner.total_updates,
    )


def check_devices(layout: Layout, num_learner_devices: int, loss: LossConfig) -> None:
    """Raise ConfigError unless the local batch splits evenly over the learner devices.

    With loss.name=ppo, each device's rows must also split into PPO's minibatches.
    """
    if layout.local_batch % num_learner_devices:
        raise ConfigError(
            f"learner.batch_size / distributed.num_processes = {layout.local_batch} rows must "
            f"split evenly over the {num_learner_devices} learner devices of this process "
            "(choose learner.batch_size or learner.learner_devices to fit).")
    rows_per_device = layout.local_batch // num_learner_devices
    if loss.name == "ppo" and rows_per_device % loss.ppo_minibatches:
        raise ConfigError(
            f"loss.ppo_minibatches={loss.ppo_minibatches} must divide the {rows_per_device} "
            "rows (environments) of each learner device's batch; choose it (or "
            "learner.batch_size) to fit.")
