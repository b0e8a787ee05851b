"""The on-device (Anakin) loop: environments, acting and learning in one compiled program.

For tasks written in JAX (`gtrxl_jax.envs.functional`), one update is a single jitted call:

    rollout: lax.scan over T steps of (policy step carrying the core state, env step)
    learn:   the learner's update (`learning.Learning.update`) on that trajectory

with the environments' state, the core state (the scan's carry from update to update, never
leaving the device), the sampling keys and the learner state as the carry from one call to
the next. Environments are sharded over the devices of a mesh (their batch axis); the
learner state is replicated, and the update averages gradients over the mesh axis.

Every environment samples its actions from a key stream of its own, so the data of a run do
not depend on how the environments are split over devices.

`train_on_device(config)` is the host side, top to bottom like the actor-learner's: build,
then dispatch updates, logging each update's metrics one update behind (so the host never
waits on the update in flight), checkpointing the whole runner state (environments, core
state and keys included, so a resumed run continues exactly as the uninterrupted one would
have), and evaluating at the end. With run.eval_interval_updates the host also evaluates
every that many updates, before dispatching the next one: the learner pauses for the
evaluation's own time, and the results go into that update's metrics record.
`train_seeds_on_device(configs)` does the same for runs that differ only in their seed, in
one program vmapped over the seeds, each run writing its own folder.

The trajectory has the actor-learner's layout (`types.Trajectory`, T+1 steps): step T is the
next rollout's step 0, which the learner reads only for the bootstrap value, the reward and
the discount. The on-policy case has no policy lag: the behaviour logits are the learner's
own, so V-trace's importance ratios are 1 up to round-off.
"""

import contextlib
import dataclasses
import functools
import threading
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax.sharding import PartitionSpec

from gtrxl_jax.agent import Agent, AgentInput
from gtrxl_jax.config import (
    ConfigError,
    RunsApartError,
    TrainConfig,
    config_differences,
    to_dict,
)
from gtrxl_jax.envs.episodes import EpisodeTotals
from gtrxl_jax.envs.functional import JaxEnv, JaxTimeStep, batch_reset, batch_step, reset_keys
from gtrxl_jax.train import builder, placement, result
from gtrxl_jax.train.acting import sample_actions
from gtrxl_jax.train.checkpoint import Checkpointer
from gtrxl_jax.train.evaluation import (
    eval_metrics,
    evaluate_on_device,
    evaluation_seed,
    periodic_eval_due,
)
from gtrxl_jax.train.layout import Layout, check_devices
from gtrxl_jax.train.learning import LearnerState, Learning, NonFiniteError
from gtrxl_jax.train.metrics import MetricsLogger, MetricsWriteError
from gtrxl_jax.train.nonfinite import NonFiniteStreak
from gtrxl_jax.train.shutdown import should_stop, stop_on_signals
from gtrxl_jax.train.types import Trajectory
from gtrxl_jax.train.update_log import UpdateLog

EPISODE_SUMS = ("episodes", "episode_return_sum", "episode_length_sum", "success_sum")



@struct.dataclass
class Rollout:
    """What acting carries from one update to the next; every leaf [N, ...] (environments).

    Attributes:
      env_state: the environments' state.
      timestep: the environments' current step (the next rollout's step 0).
      core_state: the agent's acting state (with GTrXL's cache).
      prev_action: int32 [N], each environment's previous action.
      keys: uint32 [N, 2], each environment's sampling key.
      episode_return: float32 [N], the return of each environment's episode so far.
      episode_length: int32 [N], its length so far (steps that were not first steps).
    """

    env_state: Any
    timestep: JaxTimeStep
    core_state: Any
    prev_action: jax.Array
    keys: jax.Array
    episode_return: jax.Array
    episode_length: jax.Array


@struct.dataclass
class RunnerState:
    """Everything an on-device run carries, and checkpoints: the learner's and acting's state."""

    learner: LearnerState
    rollout: Rollout

    @property
    def update(self) -> jax.Array:
        """The learner's update count (the checkpoint's number)."""
        return self.learner.update


@dataclasses.dataclass(frozen=True)
class OnDevice:
    """The on-device update of one agent on one JAX environment, over a mesh of devices.

    Attributes:
      learning: the learner's pure update (agent, loss, optimiser, segment length).
      env: the environment, one instance; vmapped over `num_envs`.
      num_envs: N, environments over all devices (a multiple of the number of devices).
      trajectory_len: T, steps per rollout (the V-trace horizon).
      mesh: a one-axis mesh over the devices, axis placement.DATA_AXIS.
    """

    learning: Learning
    env: JaxEnv
    num_envs: int
    trajectory_len: int
    mesh: jax.sharding.Mesh

    @classmethod
    def for_config(cls, config: TrainConfig, agent: Agent, layout: Layout,
                   devices: list) -> "OnDevice":
        """The run's program: its loss and optimiser, its task, its batch on `devices`.

        Raises:
          ConfigError: the batch does not split over this process's devices (or into PPO's
            minibatches there), or the task cannot be made.
        """
        mesh = placement.make_mesh(devices)
        check_devices(layout, len(mesh.local_devices), config.loss)
        return cls(builder.make_learning(config, agent, layout), builder.make_jax_task(config),
                   num_envs=config.learner.batch_size,
                   trajectory_len=config.learner.trajectory_len, mesh=mesh)

    @property
    def agent(self) -> Agent:
        """The agent being trained."""
        return self.learning.agent

    def shardings(self, runner: RunnerState) -> RunnerState:
        """Where each leaf of a runner state lives: learner replicated, rollout split by env."""
        replicated, by_rows = placement.replicated(self.mesh), placement.by_rows(self.mesh)
        return RunnerState(learner=jax.tree.map(lambda _: replicated, runner.learner),
                           rollout=jax.tree.map(lambda _: by_rows, runner.rollout))

    def place(self, runner: RunnerState) -> RunnerState:
        """A runner state of host arrays (e.g. a restored checkpoint), placed on the mesh."""
        return jax.device_put(runner, self.shardings(runner))

    def init(self, key: jax.Array, seed: int) -> RunnerState:
        """A fresh runner state, placed on the mesh.

        Args:
          key: the run's key (parameters and learner RNG).
          seed: seeds the environments (`reset_keys`) and the sampling keys.
        """
        init = functools.partial(self._init, seed=seed)
        return jax.jit(init, out_shardings=self.shardings(jax.eval_shape(init, key)))(key)

    def _init(self, key: jax.Array, seed: int) -> RunnerState:
        learner = self.learning.init_state(key)
        env_state, timestep = batch_reset(self.env, reset_keys(seed, self.num_envs))
        agent = self.agent
        core_state = agent.initial_state(self.num_envs, cache=True)
        sampling_keys = jax.random.split(jax.random.fold_in(jax.random.PRNGKey(seed), 1),
                                         self.num_envs)
        rollout = Rollout(
            env_state=env_state,
            timestep=timestep,
            core_state=agent.refresh_state(learner.params, core_state),
            prev_action=jnp.zeros(self.num_envs, jnp.int32),
            keys=sampling_keys,
            episode_return=jnp.zeros(self.num_envs, jnp.float32),
            episode_length=jnp.zeros(self.num_envs, jnp.int32),
        )
        return RunnerState(learner=learner, rollout=rollout)

    def compile_update(self, runner: RunnerState):
        """The jitted update over the mesh: runner -> (runner, metrics); donates its input.

        The metrics are the learner's (`Learning.update`) and the episodes that ended in the
        rollout: episodes, episode_return_sum, episode_length_sum, success_sum, all summed
        over the devices.
        """
        return self._compile(self._update, self.shardings(runner))

    def init_seeds(self, seeds: list[int]) -> RunnerState:
        """S independent runs' runner states, stacked on a leading seeds axis [S, ...].

        Run i is `init(jax.random.PRNGKey(seeds[i]), seeds[i])`; the seeds axis is not split
        over the mesh (each device holds its environments of every run).
        """
        return self.place_seeds([self.init(jax.random.PRNGKey(seed), seed) for seed in seeds])

    def place_seeds(self, runners: list[RunnerState]) -> RunnerState:
        """S runner states (host or device arrays), stacked on a seeds axis [S, ...], placed."""
        stacked = jax.tree.map(lambda *leaves: np.stack(leaves), *runners)
        return jax.device_put(stacked, self._seeds_shardings(stacked))

    def compile_seeds_update(self, runners: RunnerState):
        """The update of S independent runs in one program (vmapped over the seeds axis).

        runners [S, ...] (`init_seeds`, `place_seeds`) -> (runners, metrics [S]); donates its
        input. Each run's update is `compile_update`'s, up to the round-off of batched
        kernels: many seeds of a small model cost on an accelerator about what one does
        (purejaxrl's way of running seeds).
        """
        return self._compile(jax.vmap(self._update), self._seeds_shardings(runners))

    def _compile(self, update, shardings: RunnerState):
        """`update` (runner -> runner, metrics) over the mesh, jitted; donates its input."""
        specs = jax.tree.map(lambda s: s.spec, shardings)
        sharded = jax.shard_map(update, mesh=self.mesh, in_specs=(specs,),
                                out_specs=(specs, PartitionSpec()), check_vma=False)
        return jax.jit(sharded, donate_argnums=0)

    def _seeds_shardings(self, runners: RunnerState) -> RunnerState:
        """`shardings` with a leading seeds axis that every device holds whole."""
        return jax.tree.map(
            lambda s: jax.sharding.NamedSharding(self.mesh, PartitionSpec(None, *s.spec)),
            self.shardings(runners))

    def _update(self, runner: RunnerState) -> tuple[RunnerState, dict]:
        """One update on this device's environments (inside shard_map over placement.DATA_AXIS)."""
        agent, learner = self.agent, runner.learner
        params = learner.params
        rollout = runner.rollout.replace(
            core_state=agent.refresh_state(params, runner.rollout.core_state))
        start_state = agent.snapshot_state(rollout.core_state)

        def env_step(rollout: Rollout, _):
            timestep = rollout.timestep
            inputs = AgentInput.at(timestep, rollout.prev_action)
            outputs, core_state = agent.step(params, inputs, rollout.core_state)
            actions, keys = sample_actions(outputs.logits, rollout.keys)
            env_state, next_timestep = batch_step(self.env, rollout.env_state, actions)
            episode_return, episode_length, ended = _track_episodes(rollout, next_timestep)
            rollout = Rollout(env_state=env_state, timestep=next_timestep,
                              core_state=core_state, prev_action=actions, keys=keys,
                              episode_return=episode_return, episode_length=episode_length)
            return rollout, (inputs, actions, outputs.logits, timestep.discount, ended)

        rollout, (inputs, actions, logits, discount, ended) = jax.lax.scan(
            env_step, rollout, None, length=self.trajectory_len)
        trajectory = _trajectory(rollout, start_state, inputs, actions, logits, discount,
                                 version=learner.update)
        axis = placement.DATA_AXIS
        learner, metrics = self.learning.update(learner, trajectory, axis_name=axis)
        metrics.update(jax.lax.psum(_episode_sums(*ended), axis))  # keys: EPISODE_SUMS
        return RunnerState(learner=learner, rollout=rollout), metrics


def _track_episodes(rollout: Rollout, timestep: JaxTimeStep):
    """Each environment's return and length so far, and the episodes ending at `timestep`.

    Counted as the host environments count them (`envs.episodes.EpisodeTracker`): a first
    step starts from zero (its reward is 0 and it adds no length).

    Returns:
      episode_return [N], episode_length [N], and (ended [N] bool, return [N], length [N],
      success [N] bool) of the episodes that end at this step.
    """
    episode_return = jnp.where(timestep.first, 0.0, rollout.episode_return) + timestep.reward
    episode_length = (jnp.where(timestep.first, 0, rollout.episode_length)
                      + (~timestep.first).astype(jnp.int32))
    ended = (timestep.last, episode_return, episode_length, timestep.success)
    return episode_return, episode_length, ended


def _episode_sums(last, episode_return, episode_length, success) -> dict[str, jax.Array]:
    """Sums over the episodes that ended in a rollout ([T, N] each), as float32 scalars."""
    last = last.astype(jnp.float32)
    return {
        "episodes": last.sum(),
        "episode_return_sum": (last * episode_return).sum(),
        "episode_length_sum": (last * episode_length).sum(),
        "success_sum": (last * success).sum(),
    }


def _trajectory(rollout: Rollout, start_state: Any, inputs: AgentInput, actions: jax.Array,
                logits: jax.Array, discount: jax.Array, version: jax.Array) -> Trajectory:
    """The learner's trajectory [T+1, N]: the rollout's T steps, then the current step T.

    Step T's action and logits are not read by the learner (the next rollout acts it); they
    are zeros here.
    """
    timestep = rollout.timestep
    last_inputs = AgentInput.at(timestep, rollout.prev_action)
    append = lambda steps, step: jnp.concatenate([steps, step[None]], axis=0)  # noqa: E731
    num_envs = actions.shape[1]
    return Trajectory(
        inputs=jax.tree.map(append, inputs, last_inputs),
        actions=append(actions, jnp.zeros_like(actions[0])),
        behaviour_logits=append(logits, jnp.zeros_like(logits[0])),
        discount=append(discount, timestep.discount),
        task_id=jnp.zeros(num_envs, jnp.int32),
        core_state=start_state,
        param_version=jnp.full(num_envs, version, jnp.int32),
    )


def train_on_device(config: TrainConfig) -> result.TrainResult:
    """Train on a JAX task with the on-device loop (the same outputs as any run).

    Raises:
      ConfigError, CheckpointError, NonFiniteError, MetricsWriteError: as `loop.train`.
    """
    return train_seeds_on_device([config])[0]


def train_seeds_on_device(configs: list[TrainConfig]) -> list[result.TrainResult]:
    """Train runs that differ only in their seed in one program, vmapped over the seeds.

    Each run keeps its own folder, written as if it had trained alone (config, metrics,
    checkpoints, evaluation, summary.json), and resumes from its own checkpoints; its
    updates are the alone run's up to the round-off of batched kernels
    (`OnDevice.compile_seeds_update`). On an accelerator many seeds of a small model cost
    about what one does. A single config trains unbatched: `train_on_device`.

    Args:
      configs: the runs' configs, the same but for run.seed, run.log_dir and run.resume.

    Returns:
      Each run's TrainResult, in the order of `configs`.

    Raises:
      ConfigError: configs that differ in more, or several processes with several seeds.
      RunsApartError: resumed runs that stopped at different env steps.
      NonFiniteError: as `loop.train`, its message led by the failing run's folder; being
        one program, every run stops with it (each checkpointed).
      CheckpointError, MetricsWriteError: as `loop.train`.
    """
    _check_seeds(configs)
    config = configs[0]
    layout, spec = builder.check_config(config)
    placement.initialize_distributed(config.distributed)
    if len(configs) > 1 and jax.process_count() > 1:
        raise ConfigError("Seeds train together in a single process only; train the runs "
                          "of a multi-process job one by one.")
    is_main_process = jax.process_index() == 0
    agent = builder.make_agent(config, spec, num_tasks=1)
    program = OnDevice.for_config(config, agent, layout,
                                  placement.learner_devices(config.learner))
    with contextlib.ExitStack() as closing:
        # Each one is closed on the way out, also if a later one cannot be made.
        checkpointers = [closing.enter_context(contextlib.closing(
            Checkpointer(c.run.log_dir, c.run.keep_checkpoints))) for c in configs]
        resume_at = _latest_common_checkpoint(configs, checkpointers)
        starts = [builder.initial_state(
            lambda key, seed=c.run.seed: placement.to_host(program.init(key, seed)),
            checkpointer, c, resume_at)
            for c, checkpointer in zip(configs, checkpointers, strict=True)]
        env_steps = _common_start(configs, [start.env_steps for _, start in starts])
        runner, update_fn, split_runs = _compile_runs(program, [state for state, _ in starts])
        update = int(np.max(runner.update))
        loggers = [closing.enter_context(contextlib.closing(MetricsLogger(
            c.run.log_dir, c, tasks=layout.tasks, has_success=spec.has_success,
            start_env_steps=env_steps, start_update=update, enabled=is_main_process)))
            for c in configs]
        logs = [UpdateLog(metrics_logger,
                          NonFiniteStreak(config.learner.max_nonfinite_updates,
                                          start.nonfinite_streak),
                          config.run.log_interval_updates, config.run.checkpoint_interval_updates)
                for metrics_logger, (_, start) in zip(loggers, starts, strict=True)]
        to_host = functools.partial(_split_episodes, layout.tasks[0], spec.has_success)
        evaluators = [functools.partial(  # params -> {"greedy": ..., "sampled": ...}
            evaluate_on_device, agent, env=program.env, num_episodes=c.run.eval_episodes,
            seed=evaluation_seed(c.run.seed)) for c in configs]

        def log_finished(keep: int) -> None:
            for c, log in zip(configs, logs, strict=True):
                try:
                    log.log_finished(keep)
                except NonFiniteError as error:
                    if len(configs) == 1:
                        raise
                    # Every run stops with it (they are one program): say whose it was.
                    raise NonFiniteError(f"{c.run.log_dir}: {error}") from None

        def host_runs() -> list[RunnerState]:
            host = placement.to_host(runner)  # one copy; the runs are numpy slices of it
            if len(configs) == 1:
                return [host]
            return [_run_of(host, i) for i in range(len(configs))]

        stop = threading.Event()
        start_time = time.monotonic()
        failure = None
        try:
            with stop_on_signals(stop) as signals:
                while (env_steps < config.learner.total_env_steps
                       and not should_stop(stop, signals)):
                    runner, metrics = update_fn(runner)
                    update += 1
                    env_steps += layout.steps_per_update
                    for log, run_metrics in zip(logs, split_runs(metrics), strict=True):
                        log.add(update, env_steps, run_metrics, to_host)
                    if is_main_process and periodic_eval_due(config.run, update):
                        params = split_runs(placement.first_replica(runner.learner.params))
                        for log, evaluate, run_params in zip(logs, evaluators, params,
                                                              strict=True):
                            log.add_evaluation(update, eval_metrics(
                                evaluate(jax.device_get(run_params))))
                    log_finished(keep=1)
                    if update % config.run.checkpoint_interval_updates == 0:
                        log_finished(keep=0)
                        for c, checkpointer, state, (_, start), log in zip(
                                configs, checkpointers, host_runs(), starts, logs, strict=True):
                            checkpointer.save(state, c, start.after(env_steps, start_time,
                                                                    log.nonfinite_streak))
                log_finished(keep=0)
        except (NonFiniteError, MetricsWriteError) as error:
            failure = error  # the runner state is consistent: checkpoint it, then fail
        if not isinstance(failure, MetricsWriteError):
            for c, log in zip(configs, logs, strict=True):  # what a failure left unread
                error = log.log_remaining()
                if error is not None and failure is None:
                    failure = error if len(configs) == 1 else type(error)(
                        f"{c.run.log_dir}: {error}")
        ends = [start.after(env_steps, start_time, log.nonfinite_streak)
                for (_, start), log in zip(starts, logs, strict=True)]

        def save_finals() -> list[RunnerState]:  # gathers from every process
            finals = host_runs()
            for c, checkpointer, state, end in zip(configs, checkpointers, finals, ends,
                                                   strict=True):
                checkpointer.save(state, c, end)
            return finals

        finals = result.save_then_raise(failure, save_finals, loggers, update=update,
                                        env_steps=env_steps)
        return [result.finish(
            c, metrics_logger, params=final.learner.params,
            nonfinite_updates=int(final.learner.nonfinite_updates), update=update,
            start=start, end=end, interrupted=signals.received, evaluate=evaluate,
            is_main_process=is_main_process)
            for c, metrics_logger, final, evaluate, (_, start), end
            in zip(configs, loggers, finals, evaluators, starts, ends, strict=True)]


def _compile_runs(program: OnDevice, states: list[RunnerState]):
    """The runs' states placed on the mesh, their update, and a splitter of its outputs by run.

    One run trains unbatched (`compile_update`); several are stacked on a seeds axis
    (`compile_seeds_update`).

    Returns:
      (runner, update: runner -> (runner, metrics), split_runs: a pytree of the update's
      outputs -> one pytree per run, on the device).
    """
    if len(states) == 1:
        runner = program.place(states[0])
        return runner, program.compile_update(runner), lambda tree: [tree]
    runner = program.place_seeds(states)
    split_runs = jax.jit(lambda tree: [_run_of(tree, i) for i in range(len(states))])
    return runner, program.compile_seeds_update(runner), split_runs


def _run_of(tree: Any, index: int) -> Any:
    """Run `index`'s slice of a pytree stacked on a leading seeds axis [S, ...]."""
    return jax.tree.map(lambda leaf: leaf[index], tree)


# What may differ between the runs that `train_seeds_on_device` trains together.
_PER_RUN = ("run.seed", "run.log_dir", "run.resume")


def _check_seeds(configs: list[TrainConfig]) -> None:
    """Raise ConfigError unless the configs differ only in `_PER_RUN`, in folders of their own."""
    if not configs:
        raise ConfigError("Name at least one run to train.")
    first = to_dict(configs[0])
    for c in configs[1:]:
        if changed := config_differences(first, to_dict(c), skip=_PER_RUN,
                                         saved_as=f"in {configs[0].run.log_dir}",
                                         current_as="here"):
            raise ConfigError(
                f"Runs trained together may differ only in {', '.join(_PER_RUN)}; "
                f"{c.run.log_dir} differs in {'; '.join(changed)}. Train it on its own.")
    folders = [c.run.log_dir for c in configs]
    if len(set(folders)) < len(folders):
        raise ConfigError(f"Runs trained together need folders of their own; got {folders}.")


def _latest_common_checkpoint(configs: list[TrainConfig],
                              checkpointers: list[Checkpointer]) -> int | None:
    """The latest update of which every run resumed together has a checkpoint.

    Each run's save is atomic on its own, so a kill while the runs' checkpoints were being
    written can leave one run a checkpoint ahead; they resume from the one they all have,
    and the run ahead's later checkpoints are deleted (it trains them again, the same).
    None: each run's latest (one run, a fresh start, or no checkpoint in common, which
    `_common_start` then reports).
    """
    if len(configs) < 2 or not configs[0].run.resume:
        return None
    common = set.intersection(*(set(checkpointer.updates()) for checkpointer in checkpointers))
    latest = max(common, default=None)
    if latest is not None:
        for checkpointer in checkpointers:
            checkpointer.discard_after(latest)
    return latest


def _common_start(configs: list[TrainConfig], start_env_steps: list[int]) -> int:
    """The env steps every run starts from; RunsApartError if resumed runs stopped apart."""
    if len(set(start_env_steps)) > 1:
        at = ", ".join(f"{c.run.log_dir}: {steps:,d}"
                       for c, steps in zip(configs, start_env_steps, strict=True))
        raise RunsApartError(f"Runs trained together must start from the same env step; these "
                          f"start from {at}. Resume them one by one.")
    return start_env_steps[0]


def _split_episodes(
    task: str, has_success: bool, metrics: dict[str, float]
) -> tuple[dict[str, float], dict[str, EpisodeTotals]]:
    """An update's host metrics without its episode sums, and those sums as EpisodeTotals."""
    episodes, return_sum, length_sum, success_sum = (metrics.pop(k) for k in EPISODE_SUMS)
    return metrics, {task: EpisodeTotals(episodes=episodes, return_sum=return_sum,
                                         length_sum=length_sum, success_sum=success_sum,
                                         success_count=episodes if has_success else 0.0)}
