"""The training loop (Sebulba-style): actors feed trajectories, the learner updates.

    envs -> actors -> trajectory queues -> learner (pmap) -> ParamsStore -> actors

Actors are threads of this process, or processes of their own (learner.actor_processes,
`gtrxl_jax.train.actor_process`), which the loop treats alike.

`train(config)` reads top to bottom: set up devices, environments, the agent and the
learner state (fresh or restored); start the actors; then per update take a batch, update,
publish the parameters with their version, log and checkpoint; stop at
learner.total_env_steps; write a final checkpoint; evaluate; summarise. A signal stops the
run the same way, without the evaluation. A failure (an actor's error, a stalled side,
too many non-finite updates, metrics that cannot be written) also leaves a final
checkpoint (single-process runs), then raises.

Reproducible mode (learner.reproducible, the default): every trajectory of update u is
acted with the parameters of update u-2, one update behind the learner's (as cleanba), so
the data, and the learning curve, do not depend on how fast actors and learner run.
Free-running mode: actors take the newest parameters at each trajectory's start, and the
queue depth bounds the policy lag.
"""

import collections
import contextlib
import dataclasses
import functools
import logging
import os
import threading
import time
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gtrxl_jax.agent import Agent
from gtrxl_jax.config import ConfigError, TrainConfig
from gtrxl_jax.envs import EnvSpec, make_env
from gtrxl_jax.train import devices as device_placement
from gtrxl_jax.train import nonfinite, types
from gtrxl_jax.train.actor import ActingSteps, Actor
from gtrxl_jax.train.actor_process import ActorProcess, PickledParams
from gtrxl_jax.train.actor_setup import ActorPlan, build_actor, make_agent
from gtrxl_jax.train.checkpoint import Checkpointer, CheckpointError
from gtrxl_jax.train.evaluation import evaluate
from gtrxl_jax.train.handoff import ParamsStore, Stalled, Stopped, TrajectoryQueue
from gtrxl_jax.train.layout import Layout, check_devices, plan_layout
from gtrxl_jax.train.learner import Learner, LearnerState, NonFiniteError, first_replica
from gtrxl_jax.train.metrics import MetricsLogger, MetricsWriteError
from gtrxl_jax.train.nonfinite import NonFiniteStreak
from gtrxl_jax.train.optimizer import make_optimizer
from gtrxl_jax.train.shutdown import stop_on_signals

logger = logging.getLogger(__name__)

STALL_TIMEOUT_S = 600.0  # a wait longer than this (compiles included) means a side stalled
_ACTOR_JOIN_S = 10.0


@dataclasses.dataclass
class TrainResult:
    """What a run produced.

    Attributes:
      params: the final parameters (host arrays).
      update: learner updates done (the parameter version).
      env_steps: environment steps the learner consumed.
      wall_clock_s: seconds from the actors' start to the end of training.
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


def check_config(config: TrainConfig) -> tuple[Layout, EnvSpec]:
    """Check everything about a config that can be checked before any JAX work.

    Returns:
      The run's layout and the environment spec (of the first task).

    Raises:
      ConfigError: an impossible layout, an unknown task, a task the agent has no torso or
        policy for, tasks that cannot share an agent, agent options that do not fit, or a
        run.log_dir that cannot be written.
    """
    check_log_dir(config.run.log_dir)
    layout = plan_layout(config)
    specs = []
    for task in layout.tasks:
        try:
            env = make_env(task, 1, seed=0, training=True, **config.env.options)
        except ValueError as error:
            raise ConfigError(f"env.task: {error}") from error
        specs.append(env.spec)
        env.close()
    for spec in specs[1:]:
        if (spec.observation, spec.num_actions) != (specs[0].observation, specs[0].num_actions):
            raise ConfigError(
                f"env.task: {spec.task} and {specs[0].task} differ in observation or action "
                "space; a multi-task agent needs the same for all tasks.")
    spec = dataclasses.replace(specs[0], has_success=any(s.has_success for s in specs))
    try:
        make_agent(config, spec, len(layout.tasks))  # builds the modules, computes nothing
    except ValueError as error:
        raise ConfigError(f"agent: {error}") from error
    return layout, spec


def check_log_dir(log_dir: str) -> None:
    """Raise ConfigError unless run.log_dir is a folder, or can be made one, that is writable.

    Creates nothing, so a run refused later leaves no folder behind.
    """
    path = Path(log_dir).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise ConfigError(f"run.log_dir={log_dir!r} cannot be a folder: {existing} is a file. "
                          "Choose another run.log_dir.")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"run.log_dir={log_dir!r} cannot be written: {existing} is not "
                          "writable by this user. Choose another run.log_dir.")


def train(config: TrainConfig) -> TrainResult:
    """Train an agent as the config says; see the module docstring for the recipe.

    Raises:
      ConfigError: a config that cannot run here (checked before any expensive work).
      CheckpointError: a checkpoint that cannot be resumed from (checked before any
        expensive work) or written.
      NonFiniteError, Stalled, MetricsWriteError, or the error an actor thread failed with:
        raised after a final checkpoint (in a single-process run).
    """
    layout, spec = check_config(config)
    device_placement.initialize_distributed(config.distributed)
    learner_devices = device_placement.learner_devices(config.learner)
    actor_devices = device_placement.actor_devices(config.learner)
    is_main_process = jax.process_index() == 0

    agent = make_agent(config, spec, len(layout.tasks))
    optimizer = make_optimizer(
        config.optimizer.name, config.optimizer.learning_rate,
        max_grad_norm=config.optimizer.max_grad_norm, schedule=config.optimizer.schedule,
        total_updates=layout.total_updates)
    learner = Learner(agent, config.loss, optimizer, learner_devices,
                      trajectory_len=config.learner.trajectory_len,
                      segment_len=config.learner.segment_len, num_tasks=len(layout.tasks))
    check_devices(layout, learner.num_devices)
    checkpointer = Checkpointer(config.run.log_dir, config.run.keep_checkpoints)
    with contextlib.closing(checkpointer):
        state, start_env_steps = initial_state(learner, checkpointer, config)
        start_update = int(state.update)
        update, env_steps = start_update, start_env_steps
        metrics_logger = MetricsLogger(
            config.run.log_dir, config, tasks=layout.tasks, has_success=spec.has_success,
            start_env_steps=env_steps, start_update=start_update, enabled=is_main_process)

        stop = threading.Event()
        params_store = ParamsStore()
        params_store.publish(start_update, state.params)
        actors, queues = make_actors(config, layout, spec, agent, state, params_store, stop,
                                     actor_devices)
        replicated = learner.replicate(state)
        streak = NonFiniteStreak(config.learner.max_nonfinite_updates)
        actor_monitor = ActorMonitor(actors, queues)
        with contextlib.closing(metrics_logger):
            start_time = time.monotonic()
            failure = None
            try:
                with stop_on_signals(stop) as signals, actors_running(actors, stop):
                    while env_steps < config.learner.total_env_steps and not stop.is_set():
                        batch, episodes, learner_wait_s = gather_batch(actors, queues, layout,
                                                                       stop)
                        replicated, metrics = learner.update(replicated, batch)
                        update += 1
                        env_steps += layout.steps_per_update
                        params_store.publish(update, first_replica(replicated.params))
                        metrics = jax.device_get(first_replica(metrics))
                        metrics_logger.add_update({**metrics, "learner_wait_s": learner_wait_s},
                                                  episodes, env_steps)
                        streak.check(metrics, update, explain=functools.partial(
                            nonfinite.explain, learner, replicated, batch, metrics))
                        if update % config.run.log_interval_updates == 0:
                            metrics_logger.write(update, env_steps, actor_monitor.read())
                        if update % config.run.checkpoint_interval_updates == 0:
                            checkpointer.save(learner.unreplicate(replicated), config, env_steps)
            except Stopped:
                pass  # a signal, or an actor's failure (raised below)
            except (Stalled, NonFiniteError, MetricsWriteError) as error:
                failure = error  # the learner state is consistent: checkpoint it, then fail
            failure = first_actor_error(actors) or failure
            wall_clock_s = time.monotonic() - start_time
            final_state = learner.unreplicate(replicated)
            # After a failure, only a single process saves: a multi-process save waits for
            # every process, and the failed one may never come.
            if failure is None or jax.process_count() == 1:
                checkpointer.save(final_state, config, env_steps)
            if metrics_logger.pending_updates and not isinstance(failure, MetricsWriteError):
                metrics_logger.write(update, env_steps, actor_monitor.read())
            if failure is not None:
                raise failure

            eval_results = {}
            if is_main_process and config.run.eval_episodes > 0 and not signals.received:
                eval_results = evaluate(agent, final_state.params, layout.tasks,
                                        config.run.eval_episodes,
                                        seed=config.run.seed + 1_000_003,
                                        env_options=config.env.options)
            sps = (env_steps - start_env_steps) / max(wall_clock_s, 1e-9)
            metrics_logger.write_summary({
                "eval": eval_results,
                "env_steps": env_steps,
                "updates": update,
                "wall_clock_s": wall_clock_s,
                "sps": sps,
                "interrupted": signals.received,
                "nonfinite_updates": int(final_state.nonfinite_updates),
                "last_metrics": metrics_logger.latest,
            })
    return TrainResult(params=final_state.params, update=update, env_steps=env_steps,
                       wall_clock_s=wall_clock_s, sps=sps, interrupted=signals.received,
                       eval=eval_results, metrics=metrics_logger.latest,
                       log_dir=config.run.log_dir)


def initial_state(
    learner: Learner, checkpointer: Checkpointer, config: TrainConfig
) -> tuple[LearnerState, int]:
    """A fresh learner state, or the latest checkpoint's when run.resume is set.

    The checkpoint folder and the checkpoint's config are checked before the learner state
    is built (its first compile), so a run that cannot resume fails at once.

    Returns:
      (the learner state as host arrays, the env steps already consumed).

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
        checkpointer.read_meta(config)
    fresh = learner.init_state(jax.random.PRNGKey(config.run.seed))
    if not config.run.resume:
        return fresh, 0
    state, meta = checkpointer.restore(fresh, config)
    logger.info("Resuming from update %d (%d env steps) in %s", meta["update"],
                meta["env_steps"], checkpointer.directory)
    return state, int(meta["env_steps"])


def make_actors(
    config: TrainConfig,
    layout: Layout,
    spec: EnvSpec,
    agent: Agent,
    state: LearnerState,
    params_store: ParamsStore,
    stop: threading.Event,
    actor_devices: list,
) -> tuple[list[Actor | ActorProcess], list[TrajectoryQueue]]:
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
                         start_update=int(state.update), stall_timeout_s=STALL_TIMEOUT_S)
        queue = TrajectoryQueue(config.learner.queue_size, plan.name)
        if config.learner.actor_processes:
            actors.append(ActorProcess(plan, params_store, queue, stop, pickled_params))
        else:
            actors.append(build_actor(
                plan, agent=agent, acting=acting, params_store=params_store,
                trajectory_queue=queue, stop=stop,
                device=actor_devices[index % len(actor_devices)]))
        queues.append(queue)
    return actors, queues


def gather_batch(
    actors: list[Actor], queues: list[TrajectoryQueue], layout: Layout, stop: threading.Event
) -> tuple[types.Trajectory, list, float]:
    """One update's batch: `trajectories_per_update` trajectories from each actor, in order.

    Returns:
      The trajectories joined along the batch [T+1, local_batch], the (task, Episode) pairs
      that ended in them, and the seconds spent waiting.
    """
    parts, episodes, waited = [], [], 0.0
    for queue in queues:
        for _ in range(layout.trajectories_per_update):
            (trajectory, ended), seconds = queue.get(
                stop, STALL_TIMEOUT_S, alive=lambda: stop_if_an_actor_failed(actors))
            parts.append(trajectory)
            episodes.extend(ended)
            waited += seconds
    return types.concatenate(parts), episodes, waited


@contextlib.contextmanager
def actors_running(actors: list[Actor], stop: threading.Event):
    """Start the actor threads; on leaving, stop them and wait (briefly) for them to end."""
    for actor in actors:
        actor.start()
    try:
        yield
    finally:
        stop.set()
        for actor in actors:
            actor.join(_ACTOR_JOIN_S)
            if actor.is_alive():
                logger.warning("%s did not stop within %.0f s; leaving it behind.", actor.name,
                               _ACTOR_JOIN_S)


def first_actor_error(actors: list[Actor]) -> BaseException | None:
    """The error the first failed actor thread died with (the run goes down with it), if any."""
    return next((actor.error for actor in actors if actor.error is not None), None)


def stop_if_an_actor_failed(actors: list[Actor]) -> None:
    """Raise Stopped once an actor has failed; `train` raises its error after checkpointing."""
    if first_actor_error(actors) is not None:
        raise Stopped


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

    def __init__(self, actors: list[Actor], queues: list[TrajectoryQueue]):
        """Watch these actors and their queues."""
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
