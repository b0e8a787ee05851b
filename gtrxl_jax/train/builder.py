"""All wiring of a run from its TrainConfig: pre-flight checks, agent, learner, actors, state.

Everything here is built once, in this order, by the training loops:

    layout, spec = check_config(config)            # before any JAX work; ConfigError if not
    agent = make_agent(config, spec, len(layout.tasks))
    learner = make_learner(config, agent, layout, devices)
    state, start = initial_state(learner.init_state, checkpointer, config)  # start: Progress
    actors, queues = make_actors(...)              # the actor-learner loop's actors

An `ActorPlan` holds all an actor is made of, in picklable form, so that an actor process
(`gtrxl_jax.train.actor_process`) makes the same actor as a thread would (with
`build_actor`, which it is handed), with the same
environments, seeds and sampling key, hence the same data in reproducible mode.
"""

import dataclasses
import importlib.util
import logging
import os
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import jax
import numpy as np

from gtrxl_jax.agent import Agent
from gtrxl_jax.config import ConfigError, TrainConfig, from_dict, with_new_keys
from gtrxl_jax.envs import EnvSpec, JaxEnv, is_jax_task, make_env, make_jax_env
from gtrxl_jax.envs.registry import is_host_task
from gtrxl_jax.train.acting import ActingSteps
from gtrxl_jax.train.actor import Actor, EnvGroup
from gtrxl_jax.train.actor_process import ActorProcess, PickledParams
from gtrxl_jax.train.checkpoint import Checkpointer, CheckpointError, Progress, progress_of
from gtrxl_jax.train.handoff import ParamsStore, TrajectoryQueue
from gtrxl_jax.train.layout import Layout, check_devices, plan_layout, plan_on_device_layout
from gtrxl_jax.train.learning import LearnerState, Learning
from gtrxl_jax.train.metrics import WANDB_MISSING
from gtrxl_jax.train.optimizer import make_optimizer
from gtrxl_jax.train.placement import Learner

logger = logging.getLogger(__name__)


def resolve_loop(config: TrainConfig) -> str:
    """The loop a config trains with: learner.loop, with "auto" decided by the tasks.

    "auto" is "on_device" when every task exists only in JAX, else "actor_learner".
    """
    if config.learner.loop != "auto":
        return config.learner.loop
    try:
        jax_only = all(is_jax_task(task) and not is_host_task(task)
                       for task in config.env.tasks)
    except ValueError as error:  # a factory that cannot be found
        raise ConfigError(f"{task_key(config)}: {error}") from error
    return "on_device" if jax_only else "actor_learner"


def task_key(config: TrainConfig) -> str:
    """The config key that names the run's environments, for error messages."""
    return "env.factory" if config.env.factory else "env.task"


def check_config(config: TrainConfig, *, writable_log_dir: bool = True
                 ) -> tuple[Layout, EnvSpec]:
    """Check everything about a config that can be checked before any JAX work.

    Args:
      config: the run's config.
      writable_log_dir: whether run.log_dir must be writable (False for a reader of a
        finished run's folder).

    Returns:
      The run's layout and the environment spec (of the first task; for the on-device
      loop, of all env.num_envs environments).

    Raises:
      ConfigError: an impossible layout, an unknown task, a task whose optional packages
        are missing, a task the agent has no torso or policy for, tasks that cannot share
        an agent, agent options that do not fit, or a run.log_dir that cannot be written.
    """
    if writable_log_dir:
        check_log_dir(config.run.log_dir)
    if config.run.wandb and importlib.util.find_spec("wandb") is None:
        raise ConfigError(WANDB_MISSING)
    loop = resolve_loop(config)
    check_tasks_fit_loop(config, loop)
    if loop == "on_device":
        layout = plan_on_device_layout(config)
        spec = make_jax_task(config).spec(config.env.num_envs)
        check_agent(config, spec, layout)
        return layout, spec
    layout = plan_layout(config)
    specs = []
    for task in layout.tasks:
        try:
            env = make_env(task, 1, seed=0, training=True, **config.env.options)
        except (ValueError, TypeError, ImportError) as error:  # an extra missing: ImportError
            raise ConfigError(_task_error(config, error)) from error
        specs.append(env.spec)
        env.close()
    for spec in specs[1:]:
        if (spec.observation, spec.num_actions) != (specs[0].observation, specs[0].num_actions):
            raise ConfigError(
                f"env.task: {spec.task} and {specs[0].task} differ in observation or action "
                "space; a multi-task agent needs the same for all tasks.")
    spec = dataclasses.replace(specs[0], has_success=any(s.has_success for s in specs))
    check_agent(config, spec, layout)
    return layout, spec


def check_tasks_fit_loop(config: TrainConfig, loop: str) -> None:
    """Raise ConfigError if a named task exists only for the other loop than `loop`.

    (A factory's kind is checked where it is made, `gtrxl_jax.envs.factories`.)
    """
    if config.env.factory:
        return
    for task in config.env.tasks:
        host, jax_task = is_host_task(task), is_jax_task(task)
        if loop == "actor_learner" and jax_task and not host:
            raise ConfigError(f"{task_key(config)}: {task!r} is a JAX task: it trains on device "
                              "(learner.loop=on_device or auto), in a run of its own.")
        if loop == "on_device" and host and not jax_task:
            raise ConfigError(f"{task_key(config)}: {task!r} is a host task: it trains with "
                              "actors (learner.loop=actor_learner or auto).")


def check_agent(config: TrainConfig, spec: EnvSpec, layout: Layout) -> None:
    """Raise ConfigError unless the config's agent can be built for the spec."""
    try:
        make_agent(config, spec, len(layout.tasks))  # builds the modules, computes nothing
    except ValueError as error:
        raise ConfigError(f"agent: {error}") from error


def make_jax_task(config: TrainConfig) -> JaxEnv:
    """The environment of an on-device run (its one task, with env.options)."""
    try:
        return make_jax_env(config.env.tasks[0], **config.env.options)
    except (ValueError, TypeError, ImportError) as error:
        raise ConfigError(_task_error(config, error)) from error


def _task_error(config: TrainConfig, error: Exception) -> str:
    """The message of a task that cannot be made, naming env.options if any were given.

    An option of the wrong name or type reaches the environment as a TypeError.
    """
    options = f" with env.options {config.env.options}" if config.env.options else ""
    return f"{task_key(config)}{options}: {error}"


def check_log_dir(log_dir: str) -> None:
    """Raise ConfigError unless run.log_dir is a folder, or can be made one, that is writable.

    Leaves nothing behind, so a run refused later leaves no folder: it makes and removes an
    empty folder in the nearest existing one (permissions alone do not say it, e.g. for
    root on a read-only file system).
    """
    path = Path(log_dir).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"run.log_dir={log_dir!r} cannot be a folder: {existing} is a file. "
                          "Choose another run.log_dir.")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".writable-", dir=existing))
    except OSError as error:
        raise ConfigError(f"run.log_dir={log_dir!r} cannot be written: making a folder in "
                          f"{existing} failed ({error.strerror}). Choose another "
                          "run.log_dir.") from None


def make_learning(config: TrainConfig, agent: Agent, layout: Layout) -> Learning:
    """The learner's pure update: the config's loss, optimiser and segment length.

    A schedule runs over the run's optimiser steps (`schedule_steps`).
    """
    optimizer = make_optimizer(
        config.optimizer.name, config.optimizer.learning_rate,
        max_grad_norm=config.optimizer.max_grad_norm, schedule=config.optimizer.schedule,
        total_steps=schedule_steps(config),
        eps=config.optimizer.eps, b2=config.optimizer.b2,
        recent_norm_clip=config.optimizer.recent_norm_clip)
    return Learning(agent, config.loss, optimizer, segment_len=config.learner.segment_len,
                    num_tasks=len(layout.tasks), task_names=layout.tasks)


def schedule_steps(config: TrainConfig) -> int:
    """The optimiser steps a learning-rate schedule runs over.

    The run's updates x each update's optimiser steps (PPO takes several).
    """
    return config.learner.total_updates * config.loss.optimizer_steps_per_update


def _check_schedule_resumes(config: TrainConfig, saved_config: dict) -> None:
    """Raise CheckpointError if a linear schedule would change its length on resume.

    The optimiser's step count is restored, so over other `schedule_steps` than the
    checkpoint's run the learning rate would jump (to 0, or back up).
    """
    if config.optimizer.schedule != "linear":
        return
    saved = schedule_steps(from_dict(TrainConfig, with_new_keys(saved_config)))
    now = schedule_steps(config)
    if saved != now:
        raise CheckpointError(
            f"optimizer.schedule=linear decays over {saved:,d} optimiser steps in the "
            f"checkpoint's run and over {now:,d} in this config (learner.total_env_steps, "
            "batch_size or trajectory_len, or PPO's epochs or minibatches changed), so the "
            "resumed learning rate would jump. Resume with the checkpoint's values, or start a "
            "new run in another run.log_dir.")


def make_learner(config: TrainConfig, agent: Agent, layout: Layout, devices: list) -> Learner:
    """The learner on its devices (`placement.Learner`), checked against the layout."""
    learner = Learner(make_learning(config, agent, layout), devices,
                      trajectory_len=config.learner.trajectory_len)
    check_devices(layout, learner.num_devices, config.loss)
    return learner


def initial_state(
    init_state: Callable[[jax.Array], LearnerState], checkpointer: Checkpointer,
    config: TrainConfig, update: int | None = None,
) -> tuple[LearnerState, Progress]:
    """A fresh learner state, or a checkpoint's (the latest) when run.resume is set.

    The checkpoint folder and the checkpoint's config are checked before the learner state
    is built (its first compile), so a run that cannot resume fails at once.

    Args:
      init_state: key -> a fresh learner state as host arrays (also the template a
        checkpoint is restored into).
      checkpointer: the run's checkpoints.
      config: the run's config.
      update: the checkpoint to resume from (None: the latest).

    Returns:
      (the learner state as host arrays, the env steps and training time it stands for).

    Raises:
      CheckpointError: resume without a usable checkpoint, a checkpoint of another model,
        or a fresh run in a folder that already holds checkpoints (it would mix two runs).
    """
    latest = checkpointer.latest_update()
    if not config.run.resume and latest is not None:
        raise CheckpointError(
            f"{checkpointer.directory} already holds checkpoints (latest: update {latest}). "
            "Set run.resume=true to continue that run, or choose another run.log_dir.")
    if config.run.resume:
        _check_schedule_resumes(config, checkpointer.read_meta(config, update)["config"])
    fresh = init_state(jax.random.PRNGKey(config.run.seed))
    if not config.run.resume:
        return fresh, Progress(env_steps=0, wall_clock_s=0.0)
    state, meta = checkpointer.restore(fresh, config, update)
    logger.info("Resuming from update %d (%d env steps) in %s", meta["update"],
                meta["env_steps"], checkpointer.directory)
    return state, progress_of(meta)


def make_agent(config: TrainConfig, spec: EnvSpec, num_tasks: int) -> Agent:
    """The agent of a config for an environment spec, with one value output per task."""
    return Agent(
        spec.observation,
        spec.num_actions,
        config.agent.core_config(),
        observation_kind=spec.observation_kind,
        torso_options=tuple(sorted(config.agent.torso_options.items())),
        use_prev_action_reward=config.agent.use_prev_action_reward,
        num_tasks=num_tasks,
        decode_observations=config.loss.reconstruction_cost > 0,
    )


@dataclasses.dataclass(frozen=True)
class ActorPlan:
    """Everything one actor is made of (picklable).

    Attributes:
      config: the run's config.
      layout: the run's layout.
      spec: the environment spec the agent is built for.
      process_index: the JAX process (host) the actor belongs to.
      index: the actor's index within its host.
      run_key: the learner state's RNG key data ([2] uint32) at the (re)start; seeds derive
        from it, so a resumed run does not replay the same episodes.
      start_update: the learner's update count when the actors start.
      stall_timeout_s: how long the actor waits on the learner before raising Stalled.
    """

    config: TrainConfig
    layout: Layout
    spec: EnvSpec
    process_index: int
    index: int
    run_key: tuple[int, ...]
    start_update: int
    stall_timeout_s: float

    @property
    def name(self) -> str:
        """e.g. "actor 0.1": host 0, actor 1."""
        return f"actor {self.process_index}.{self.index}"

    def seeds(self) -> tuple[list[int], int]:
        """(one environment seed per group, the seed of the sampling key)."""
        num_groups = len(self.layout.tasks) * self.layout.groups_per_task
        seeds = np.random.SeedSequence(
            [*self.run_key, self.process_index, self.index]).generate_state(num_groups + 1)
        seeds = [int(seed) for seed in seeds % 2**31]
        return seeds[:num_groups], seeds[num_groups]


def build_actor(
    plan: ActorPlan,
    params_store: ParamsStore,
    trajectory_queue,
    stop: threading.Event,
    device,
    *,
    agent: Agent | None = None,
    acting: ActingSteps | None = None,
) -> Actor:
    """Make the actor of a plan (not started), with its environments.

    An actor process calls it too (`actor_process.run_child`), with the same plan, so an
    actor makes the same data as a thread or as a process.

    Args:
      plan: the actor's plan.
      params_store: where the learner's parameters come from.
      trajectory_queue: where trajectories go (anything with TrajectoryQueue's `put`).
      stop: the stop event the actor polls.
      device: the device its policy runs on.
      agent: the agent (default: `make_agent` of the plan's config).
      acting: the agent's jitted acting functions, to share them between a process's
        actors (default: jit them for this actor).
    """
    agent = agent or make_agent(plan.config, plan.spec, len(plan.layout.tasks))
    layout, config = plan.layout, plan.config
    env_seeds, key_seed = plan.seeds()
    groups = []
    for task_id, task in enumerate(layout.tasks):
        for g in range(layout.groups_per_task):
            env = make_env(task, layout.envs_per_group, seed=env_seeds[
                task_id * layout.groups_per_task + g], training=True, **config.env.options)
            groups.append(EnvGroup(env=env, task_id=task_id))
    return Actor(
        plan.name, agent, groups,
        trajectory_len=config.learner.trajectory_len,
        params_store=params_store,
        trajectory_queue=trajectory_queue,
        stop=stop,
        key=jax.random.PRNGKey(key_seed),
        device=device,
        reproducible=config.learner.reproducible,
        start_update=plan.start_update,
        trajectories_per_update=layout.trajectories_per_update,
        timeout_s=plan.stall_timeout_s,
        acting=acting or ActingSteps.of(agent),
    )


def make_actors(
    config: TrainConfig,
    layout: Layout,
    spec: EnvSpec,
    agent: Agent,
    state: LearnerState,
    params_store: ParamsStore,
    stop: threading.Event,
    actor_devices: list,
    stall_timeout_s: float,
) -> tuple[list, list[TrajectoryQueue]]:
    """Make this process's actors (not started): threads, or processes (actor_processes).

    Environment seeds and sampling keys derive from the learner state's RNG key, the
    process and the actor (`ActorPlan.seeds`), so a resumed run does not replay the same
    episodes, and an actor makes the same data as a thread or as a process.
    """
    actors, queues = [], []
    if config.learner.actor_processes:  # they share each version's host copy and pickle
        acting, pickled_params = None, PickledParams()
    else:
        acting, pickled_params = ActingSteps.of(agent), None
    for index in range(config.learner.num_actor_threads):
        plan = ActorPlan(config, layout, spec, process_index=jax.process_index(), index=index,
                         run_key=tuple(np.asarray(state.rng, np.uint32).tolist()),
                         start_update=int(state.update), stall_timeout_s=stall_timeout_s)
        queue = TrajectoryQueue(config.learner.queue_size, plan.name)
        if config.learner.actor_processes:
            actors.append(ActorProcess(plan, build_actor, params_store, queue, stop,
                                       pickled_params))
        else:
            actors.append(build_actor(plan, params_store, queue, stop,
                                      actor_devices[index % len(actor_devices)],
                                      agent=agent, acting=acting))
        queues.append(queue)
    return actors, queues
