"""The training loop (Sebulba-style): actors feed trajectories, the learner updates.

    envs -> actors -> trajectory queues -> learner (placement) -> ParamsStore -> actors

Actors are threads of this process, or processes of their own (learner.actor_processes,
`gtrxl_jax.train.actor_process`), which the loop treats alike.

`train(config)` reads top to bottom: check the config and build the agent, learner, state
(fresh or restored) and actors (`builder`); start the actors; then per update take a batch, update,
publish the parameters with their version, evaluate (every run.eval_interval_updates, in the
learner's thread: it pauses the learner for the evaluation's own time while the actors fill
their queues; one longer than STALL_TIMEOUT_S reads as a stalled learner), log and
checkpoint; stop at learner.total_env_steps; write a final checkpoint; evaluate; summarise.
A signal stops the run the same way, without the evaluation. A failure (an actor's error, a
stalled side, too many non-finite updates, metrics that cannot be written) also leaves a
final checkpoint (single-process runs), then raises.

Reproducible mode (learner.reproducible, the default): every trajectory of update u is
acted with the parameters of update u-2, one update behind the learner's (as cleanba), so
the data, and the learning curve, do not depend on how fast actors and learner run.
Free-running mode: actors take the newest parameters at each trajectory's start, and the
queue depth bounds the policy lag.
"""

import contextlib
import functools
import logging
import threading
import time

import jax

from gtrxl_jax.config import ConfigError, TrainConfig
from gtrxl_jax.train import builder, nonfinite, on_device, placement, result, types
from gtrxl_jax.train.actor import Actor
from gtrxl_jax.train.checkpoint import Checkpointer
from gtrxl_jax.train.evaluation import (
    eval_metrics,
    evaluate,
    evaluation_seed,
    periodic_eval_due,
)
from gtrxl_jax.train.handoff import ParamsStore, Stalled, Stopped, TrajectoryQueue
from gtrxl_jax.train.layout import Layout
from gtrxl_jax.train.learning import NonFiniteError
from gtrxl_jax.train.metrics import (
    ActorMonitor,
    MetricsLogger,
    MetricsWriteError,
    totals_by_task,
)
from gtrxl_jax.train.nonfinite import NonFiniteStreak
from gtrxl_jax.train.placement import first_replica
from gtrxl_jax.train.shutdown import should_stop, stop_on_signals
from gtrxl_jax.train.update_log import UpdateLog

logger = logging.getLogger(__name__)


STALL_TIMEOUT_S = 600.0  # a wait longer than this (compiles included) means a side stalled
_ACTOR_JOIN_S = 10.0


def train(config: TrainConfig) -> result.TrainResult:
    """Train an agent as the config says, with the loop it names (`builder.resolve_loop`).

    Raises:
      ConfigError: a config that cannot run here (checked before any expensive work).
      CheckpointError: a checkpoint that cannot be resumed from (checked before any
        expensive work) or written.
      NonFiniteError, Stalled, MetricsWriteError, or the error an actor thread failed with:
        raised after a final checkpoint (in a single-process run).

    In a multi-process run an error ends every process instead of raising (exit code 1, 2
    for a ConfigError), and so does a process that stops responding
    (`placement.failures_end_every_process`).
    """
    with placement.failures_end_every_process():
        if builder.resolve_loop(config) == "on_device":
            return on_device.train_on_device(config)
        return train_actor_learner(config)


def train_seeds(configs: list[TrainConfig]) -> list[result.TrainResult]:
    """Train runs that differ only in their seed at once, in one on-device program.

    Each run writes its own folder as `train` would (`on_device.train_seeds_on_device`): the
    way to run many seeds of a small model on an accelerator for about the cost of one.

    Raises:
      ConfigError: a config that does not train on device (a JAX task), configs that differ
        in more than run.seed, run.log_dir and run.resume, or any error `train` names.
    """
    with placement.failures_end_every_process():
        for config in configs:
            if builder.resolve_loop(config) != "on_device":
                raise ConfigError(
                    f"Seeds train together only with the on-device loop (a JAX task); "
                    f"{config.env.task!r} trains with learner.loop={config.learner.loop!r}. "
                    "Train its seeds one by one.")
        return on_device.train_seeds_on_device(configs)


def train_actor_learner(config: TrainConfig) -> result.TrainResult:
    """Train with the actor-learner loop; see the module docstring for the recipe.

    Raises:
      ConfigError: a config that cannot run here (checked before any expensive work).
      CheckpointError: a checkpoint that cannot be resumed from (checked before any
        expensive work) or written.
      NonFiniteError, Stalled, MetricsWriteError, or the error an actor thread failed with:
        raised after a final checkpoint (in a single-process run).
    """
    layout, spec = builder.check_config(config)
    placement.initialize_distributed(config.distributed)
    learner_devices = placement.learner_devices(config.learner, with_actors=True)
    actor_devices = placement.actor_devices(config.learner)
    is_main_process = jax.process_index() == 0

    agent = builder.make_agent(config, spec, len(layout.tasks))
    learner = builder.make_learner(config, agent, layout, learner_devices)
    checkpointer = Checkpointer(config.run.log_dir, config.run.keep_checkpoints)
    with contextlib.closing(checkpointer):
        state, start = builder.initial_state(learner.init_state, checkpointer, config)
        start_update = int(state.update)
        update, env_steps = start_update, start.env_steps
        metrics_logger = MetricsLogger(
            config.run.log_dir, config, tasks=layout.tasks, has_success=spec.has_success,
            start_env_steps=env_steps, start_update=start_update, enabled=is_main_process)

        stop = threading.Event()
        params_store = ParamsStore()
        params_store.publish(start_update, state.params)
        actors, queues = builder.make_actors(config, layout, spec, agent, state, params_store,
                                             stop, actor_devices, STALL_TIMEOUT_S)
        replicated = learner.replicate(state)
        actor_monitor = ActorMonitor(actors, queues)
        evaluate_params = functools.partial(  # params -> {"greedy": ..., "sampled": ...}
            evaluate, agent, tasks=layout.tasks, num_episodes=config.run.eval_episodes,
            seed=evaluation_seed(config.run.seed), env_options=config.env.options)
        log = UpdateLog(metrics_logger, NonFiniteStreak(config.learner.max_nonfinite_updates,
                                                        start.nonfinite_streak),
                        config.run.log_interval_updates, config.run.checkpoint_interval_updates,
                        extra=actor_monitor.read)
        with contextlib.closing(metrics_logger):
            start_time = time.monotonic()
            failure = None
            try:
                with stop_on_signals(stop) as signals, actors_running(actors, stop):
                    while env_steps < config.learner.total_env_steps:
                        batch, episodes, learner_wait_s = gather_batch(actors, queues, layout,
                                                                       stop)
                        # The previous update, done while gathering; read before the next
                        # update donates the state its explanation would need.
                        log.log_finished(keep=0)
                        if should_stop(stop, signals):  # after the read: no wait on the device
                            break
                        replicated, metrics = learner.update(replicated, batch)
                        update += 1
                        env_steps += layout.steps_per_update
                        log.add(update, env_steps, first_replica(metrics),
                                to_host=functools.partial(_with_episodes, episodes,
                                                          learner_wait_s),
                                explain=functools.partial(nonfinite.explain, learner.learning,
                                                          replicated, batch))
                        params = first_replica(replicated.params)
                        params_store.publish(update, params)
                        if is_main_process and periodic_eval_due(config.run, update):
                            log.add_evaluation(update, eval_metrics(evaluate_params(params)))
                        if update % config.run.checkpoint_interval_updates == 0:
                            log.log_finished(keep=0)
                            checkpointer.save(learner.unreplicate(replicated), config,
                                              start.after(env_steps, start_time,
                                                          log.nonfinite_streak))
                    log.log_finished(keep=0)
            except Stopped:
                pass  # a signal, or an actor's failure (raised below)
            except (Stalled, NonFiniteError, MetricsWriteError) as error:
                failure = error  # the learner state is consistent: checkpoint it, then fail
            failure = first_actor_error(actors) or failure
            if not isinstance(failure, MetricsWriteError):
                unlogged_error = log.log_remaining()  # what a signal or failure left unread
                failure = failure or unlogged_error
            end = start.after(env_steps, start_time, log.nonfinite_streak)
            final_state = learner.unreplicate(replicated)
            result.save_then_raise(
                failure, lambda: checkpointer.save(final_state, config, end), [metrics_logger],
                update=update, env_steps=env_steps, extra=actor_monitor.read)
            return result.finish(
                config, metrics_logger, params=final_state.params,
                nonfinite_updates=int(final_state.nonfinite_updates), update=update,
                start=start, end=end, interrupted=signals.received,
                evaluate=evaluate_params, is_main_process=is_main_process)


def _with_episodes(
    episodes: list, learner_wait_s: float, metrics: dict[str, float]
) -> tuple[dict[str, float], dict]:
    """An update's host metrics with its batch's waiting time, and its episodes by task."""
    return {**metrics, "learner_wait_s": learner_wait_s}, totals_by_task(episodes)


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
