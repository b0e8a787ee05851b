"""Training configuration: frozen dataclasses with defaults, validation and key=value overrides.

    config = TrainConfig()                                    # the defaults
    config = apply_overrides(config, ["agent.core=lstm", "env.task=TMaze-L20"])
    config = load_config("experiments/configs/tmaze.py", ["learner.batch_size=16"])

Every user error (an unknown key, a wrong type, an impossible value) raises ConfigError
naming the key and what is allowed, before any expensive work starts.

Validation style: the training config raises ConfigError (a ValueError), which the CLI maps
to exit code 2; the core configs of `gtrxl_jax.nn.config` raise plain ValueError (the library
has no training dependency), which `from_dict` re-raises as ConfigError naming the section.
"""

import dataclasses
import difflib
import importlib.util
import inspect
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

from gtrxl_jax.nn.config import (
    VARIANTS,
    CoreConfig,
    FeedForwardConfig,
    GTrXLConfig,
    LSTMConfig,
)

CORES = (*VARIANTS, "lstm", "feedforward")
LOOPS = ("auto", "actor_learner", "on_device")
LOSSES = ("vtrace", "ppo")
OPTIMIZERS = ("adam", "amsgrad", "rmsprop")
SCHEDULES = ("constant", "linear")
_ARTICLE_TYPE = {int: "an int", float: "a float"}


class ConfigError(ValueError):
    """A configuration value or key a user gave is not valid."""


class RunsApartError(ConfigError):
    """Runs asked to train together (`train_seeds`) resume from different env steps."""


# env.factory's form, "package.module:function" (`gtrxl_jax.envs.factories` imports it).
FACTORY_FORM = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _require_positive(key: str, value: int) -> None:
    """Raise ConfigError unless an int field is >= 1 (`_check_types` has checked its type)."""
    _require(value >= 1, f"{key} must be >= 1, got {value}.")


def _type_ok(annotation: Any, value: Any) -> bool:
    """Whether `value` has the annotated type (an int is a float; a bool is not a number)."""
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if annotation is Any:
        return True
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(arg, value) for arg in args)
    if origin is tuple:
        return isinstance(value, tuple) and all(_type_ok(args[0], item) for item in value)
    if origin is dict:
        return isinstance(value, dict)
    if annotation in (int, float) and isinstance(value, bool):
        return False
    if annotation is float:
        return isinstance(value, int | float)
    return isinstance(value, annotation)


def _type_name(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return " or ".join(_type_name(arg) for arg in args)
    if origin is tuple:
        return f"a tuple of {args[0].__name__} values"
    names = {int: "an int", float: "a number", str: "a string", bool: "true or false",
             dict: "a dict", type(None): "None"}
    if annotation in names:
        return names[annotation]
    name = getattr(annotation, "__name__", str(annotation))
    return f"{'an' if name[0] in 'AEIOU' else 'a'} {name}"


def _check_types(config: Any, section: str) -> None:
    """Raise ConfigError naming the first field of a config dataclass with a wrong type.

    Overrides arrive as strings and are converted before this check; it catches values of
    the wrong type written in a config file (e.g. `EnvConfig(num_envs="4")`).
    """
    for name, annotation in _field_types(type(config)).items():
        value = getattr(config, name)
        key = f"{section}.{name}" if section else name
        if not _type_ok(annotation, value):
            raise ConfigError(f"{key} must be {_type_name(annotation)}, got {value!r}.")
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{key} must be a finite number, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class EnvConfig:
    """Which task to train on, and how many environments each actor steps.

    Attributes:
      task: a task name: envpool's or the project's host tasks ("TMaze-L<N>",
        "MemoryMaze-<N>x<N>"), trained by actors, or a JAX task (gtrxl_jax.envs.JAX_TASKS:
        "MiniGrid-MemoryS<size>", the card games such as "RepeatFirstEasy",
        "MemoryChain-L<N>"), trained on device; several comma-separated host tasks train one
        multi-task agent: a shared
        policy, and a task id per task that selects the agent's value output for that task
        (and, with loss.popart, that task's PopArt statistics).
      num_envs: environments per actor thread.
      options: extra keyword options for make_env or the factory (e.g.
        {"max_episode_steps": 1000}; on the command line env.options.max_episode_steps=1000).
      groups_per_task: groups each task's environments are split into; an actor steps the
        groups in turn, so with 2 one half steps (on envpool's threads) while the policy runs
        on the other. Worth it where stepping is slow next to inference (pixels); 1 otherwise.
      factory: your own environments instead of env.task: "package.module:function", a
        host factory (takes num_envs; returns a gymnasium vector environment) or a JAX one
        (returns a JaxEnv), as `gtrxl_jax.envs.factories` describes; env.options are passed
        to it. "" (the default): env.task names the task.
    """

    task: str = "TMaze-L16"
    num_envs: int = 32
    options: dict = dataclasses.field(default_factory=dict)
    groups_per_task: int = 1
    factory: str = ""

    def __post_init__(self):
        _check_types(self, "env")
        _require(isinstance(self.task, str) and self.task != "", "env.task must be a task name.")
        _require_positive("env.num_envs", self.num_envs)
        _require_positive("env.groups_per_task", self.groups_per_task)
        _require(self.factory == "" or FACTORY_FORM.fullmatch(self.factory) is not None,
                 f"env.factory={self.factory!r} must name a function as "
                 "'package.module:function'.")

    @property
    def tasks(self) -> tuple[str, ...]:
        """The names the run makes its environments by (task id = index).

        env.factory if set, else env.task's comma-separated names.
        """
        if self.factory:
            return (self.factory,)
        return tuple(task.strip() for task in self.task.split(","))


@dataclasses.dataclass(frozen=True)
class AgentConfig:
    """The agent's core and inputs.

    Attributes:
      core: "gtrxl", "trxl_i", "trxl" (transformer variants, configured by `transformer`;
        its `variant` is set from `core`, and another variant set there is an error),
        "lstm" (configured by `lstm`) or "feedforward" (no memory; its width is
        `transformer.d_model`).
      transformer: the GTrXL / TrXL / TrXL-I configuration.
      lstm: the LSTM configuration.
      use_prev_action_reward: feed the previous action and reward to the core.
      torso_options: options of the torso (see gtrxl_jax.nn.torsos.make_torso); on the
        command line a sequence is comma-separated: agent.torso_options.hidden_sizes=128,128
        (one item: 128,).
    """

    core: str = "gtrxl"
    transformer: GTrXLConfig = dataclasses.field(
        default_factory=lambda: GTrXLConfig(num_layers=2, d_model=64, num_heads=4, memory_len=32)
    )
    lstm: LSTMConfig = dataclasses.field(default_factory=lambda: LSTMConfig(hidden_size=64))
    use_prev_action_reward: bool = True
    torso_options: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        _check_types(self, "agent")
        _require(self.core in CORES, f"agent.core={self.core!r} is not one of {CORES}.")
        default_variant = GTrXLConfig.variant
        _require(
            self.core not in VARIANTS
            or self.transformer.variant in (self.core, default_variant),
            f"agent.transformer.variant={self.transformer.variant!r} contradicts "
            f"agent.core={self.core!r}: agent.core picks the transformer variant; set "
            f"agent.core={self.transformer.variant} instead.",
        )
        if self.core in VARIANTS and self.transformer.variant != self.core:
            object.__setattr__(
                self, "transformer", dataclasses.replace(self.transformer, variant=self.core)
            )

    def core_config(self) -> CoreConfig:
        """The configuration of the chosen core."""
        if self.core in VARIANTS:
            return self.transformer
        if self.core == "lstm":
            return self.lstm
        return FeedForwardConfig(d_model=self.transformer.d_model)

    def unread_keys(self) -> tuple[str, ...]:
        """The `agent.` config keys the chosen core does not read (e.g. agent.lstm for GTrXL).

        Changing one changes neither the parameters nor what they mean.
        """
        if self.core in VARIANTS:
            return ("agent.lstm",)
        if self.core == "lstm":
            return ("agent.transformer",)
        return ("agent.lstm",) + tuple(f"agent.transformer.{field.name}"
                                       for field in dataclasses.fields(GTrXLConfig)
                                       if field.name != "d_model")


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """The learner's loss: V-trace (one step per batch) or PPO (epochs of minibatch steps).

    Attributes:
      name: "vtrace" (gtrxl_jax.losses.impala_loss; the asynchronous actor-learner's loss)
        or "ppo" (gtrxl_jax.losses.ppo_loss, Schulman et al. 2017: `ppo_epochs` passes over
        each batch in `ppo_minibatches` minibatches of environments, GAE(`gae_lambda`)
        advantages from the values before the update (standardised over the batch unless
        `ppo_normalise_advantages` is false), ratios against the acting policy).
      discount: gamma.
      rho_bar: V-trace's truncation of the importance ratios in the TD errors and the
        policy-gradient advantages (rho-bar; IMPALA: 1).
      c_bar: V-trace's truncation of the trace coefficients c_s (c-bar; IMPALA: 1).
      lambda_: V-trace's trace discount, c_s = lambda min(c_bar, rho_s) (1: IMPALA's).
      baseline_cost: weight of the value loss.
      entropy_cost: weight of the entropy bonus.
      popart: normalise values per task with PopArt (Hessel et al. 2018): each task's value
        output learns normalised targets under that task's own statistics, and the policy's
        advantages are divided by its scale sigma. With PPO and `ppo_normalise_advantages`
        false, the advantages are so measured against the returns' spread, which, unlike
        standardising, does not scale a solved task's advantage noise back up to unit size
        (on the card games it learned less than standardised advantages at a lower
        learning rate: docs/suites.md).
      ppo_clip: PPO's epsilon: the probability ratio is clipped to [1 - eps, 1 + eps].
      ppo_epochs: passes over each batch.
      ppo_minibatches: minibatches per pass, each a shuffled share of every learner
        device's environments (so with several devices, which environments share a
        minibatch depends on the split).
      gae_lambda: GAE's lambda for PPO's advantages and value targets.
      ppo_normalise_advantages: standardise PPO's advantages over each batch (the common
        default). False keeps them in return units, as CleanRL's PPO-TrXL does: once a task
        is solved its advantages shrink to noise, which standardising would scale back up to
        full-size policy steps (docs/stability.md, "PPO on MiniGrid Memory").
      reconstruction_cost: weight of an auxiliary loss that decodes each step's observation
        from the core's output (mean squared error; vector observations only), as CleanRL's
        PPO-TrXL and Memory Gym (Pleines et al. 2024) do; 0 (the default): no decoder.
    """

    name: str = "vtrace"
    discount: float = 0.99
    rho_bar: float = 1.0
    c_bar: float = 1.0
    lambda_: float = 1.0
    baseline_cost: float = 0.5
    entropy_cost: float = 0.01
    popart: bool = False
    ppo_clip: float = 0.2
    ppo_epochs: int = 4
    ppo_minibatches: int = 4
    gae_lambda: float = 0.95
    ppo_normalise_advantages: bool = True
    reconstruction_cost: float = 0.0

    def __post_init__(self):
        _check_types(self, "loss")
        _require(
            0.0 <= self.discount <= 1.0, f"loss.discount must be in [0, 1], got {self.discount}."
        )
        for name in ("rho_bar", "c_bar"):
            value = getattr(self, name)
            _require(value > 0, f"loss.{name} must be > 0, got {value}.")
        _require(0.0 <= self.lambda_ <= 1.0, f"loss.lambda_ must be in [0, 1], got {self.lambda_}.")
        for name in ("baseline_cost", "entropy_cost", "reconstruction_cost"):
            value = getattr(self, name)
            _require(value >= 0, f"loss.{name} must be >= 0, got {value}.")
        _require(self.name in LOSSES, f"loss.name={self.name!r} is not one of {LOSSES}.")
        _require(self.ppo_clip > 0, f"loss.ppo_clip must be > 0, got {self.ppo_clip}.")
        _require_positive("loss.ppo_epochs", self.ppo_epochs)
        _require_positive("loss.ppo_minibatches", self.ppo_minibatches)
        _require(0.0 <= self.gae_lambda <= 1.0,
                 f"loss.gae_lambda must be in [0, 1], got {self.gae_lambda}.")

    @property
    def optimizer_steps_per_update(self) -> int:
        """Optimiser steps in one learner update: PPO's epochs x minibatches; V-trace's 1."""
        return self.ppo_epochs * self.ppo_minibatches if self.name == "ppo" else 1


@dataclasses.dataclass(frozen=True)
class OptimizerConfig:
    """The optimiser (gtrxl_jax.train.optimizer.make_optimizer).

    Attributes:
      name: "adam", "amsgrad" or "rmsprop" (OPTIMIZERS).
      learning_rate: the initial learning rate. The default 2e-4 (with Adam, constant) holds
        a solved memory task where 5e-4 let a rare gradient spike undo it
        (docs/stability.md).
      max_grad_norm: global-norm gradient clipping (None: no clipping).
      schedule: "constant" or "linear" (decay to 0 over the run).
      eps: the optimiser's epsilon (None: its default, Adam 1e-8, RMSProp 0.1 inside the
        square root as IMPALA).
      b2: Adam's decay of the second moment.
      recent_norm_clip: clip each gradient to this many times the running mean of recent
        gradient norms (`gtrxl_jax.train.optimizer.clip_by_recent_norm`), > 1; None: off.
    """

    name: str = "adam"
    learning_rate: float = 2e-4
    max_grad_norm: float | None = 40.0
    schedule: str = "constant"
    eps: float | None = None
    b2: float = 0.999
    recent_norm_clip: float | None = None

    def __post_init__(self):
        _check_types(self, "optimizer")
        _require(
            self.name in OPTIMIZERS,
            f"optimizer.name={self.name!r} is not one of {OPTIMIZERS}.",
        )
        _require(
            self.learning_rate > 0,
            f"optimizer.learning_rate must be > 0, got {self.learning_rate}.",
        )
        _require(
            self.schedule in SCHEDULES,
            f"optimizer.schedule={self.schedule!r} is not one of {SCHEDULES}.",
        )
        _require(self.max_grad_norm is None or self.max_grad_norm > 0,
                 f"optimizer.max_grad_norm must be > 0 (or None: no clipping), got "
                 f"{self.max_grad_norm}.")
        _require(self.eps is None or self.eps > 0, f"optimizer.eps must be > 0, got {self.eps}.")
        _require(0 <= self.b2 < 1, f"optimizer.b2 must be in [0, 1), got {self.b2}.")
        _require(self.recent_norm_clip is None or self.recent_norm_clip > 1,
                 f"optimizer.recent_norm_clip must be > 1, got {self.recent_norm_clip}.")


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """How the run trains: the loop, the learner's batches and the actor-learner coupling.

    Attributes:
      loop: "actor_learner" (Sebulba: environments step on the host, actors feed a learner
        through queues; any task), "on_device" (Anakin: environments written in JAX step
        inside the same compiled program as acting and learning, `gtrxl_jax.envs.JAX_TASKS`;
        every environment feeds every update, so batch_size = env.num_envs x processes), or
        "auto": on_device for tasks that exist only in JAX, actor_learner for the rest (the
        T-maze has both; choose on_device explicitly for it).
      trajectory_len: steps per trajectory (the V-trace horizon), a multiple of segment_len.
      segment_len: the core's segment length T; the learner scans trajectory_len / T segments.
        None means one segment of trajectory_len.
      batch_size: trajectories per update, across all learner devices and hosts.
      total_env_steps: the run's length in environment steps.
      num_actor_threads: actors per host (threads, or processes with actor_processes).
      reproducible: actors act with the parameters of exactly one update before the one their
        data feeds (a fixed policy lag), so the learning curve does not depend on speed.
      queue_size: trajectories the actor-learner queue holds in free-running mode.
      actor_devices: indices into jax.local_devices() that the actors act on. None: the
        first device.
      learner_devices: indices into jax.local_devices() that the learner's mesh spans.
        None: every device, except that with several accelerators per process the
        actor-learner leaves the first to the actors (the device that acts would straggle
        in every gradient reduction). On one accelerator they share it; CPU devices share
        the same cores, so all of them learn.
      max_nonfinite_updates: stop after this many consecutive skipped non-finite updates.
      actor_processes: run each actor in a spawned process of its own, acting on that
        process's CPU, instead of a thread of the learner's process. On a CPU the actor's
        policy steps then no longer queue behind the learner's kernels in one XLA thread
        pool, and actors do not share the learner's GIL. Same data, and in free-running
        mode the same bound on the trajectories in flight, as threads.
    """

    loop: str = "auto"
    trajectory_len: int = 32
    segment_len: int | None = None
    batch_size: int = 32
    total_env_steps: int = 200_000
    num_actor_threads: int = 1
    reproducible: bool = True
    queue_size: int = 2
    actor_devices: tuple[int, ...] | None = None
    learner_devices: tuple[int, ...] | None = None
    max_nonfinite_updates: int = 10
    actor_processes: bool = False

    def __post_init__(self):
        _check_types(self, "learner")
        _require(self.loop in LOOPS, f"learner.loop={self.loop!r} is not one of {LOOPS}.")
        for name in (
            "trajectory_len",
            "batch_size",
            "total_env_steps",
            "num_actor_threads",
            "queue_size",
            "max_nonfinite_updates",
        ):
            _require_positive(f"learner.{name}", getattr(self, name))
        if self.segment_len is not None:
            _require_positive("learner.segment_len", self.segment_len)
            _require(
                self.trajectory_len % self.segment_len == 0,
                f"learner.trajectory_len={self.trajectory_len} must be a multiple of "
                f"learner.segment_len={self.segment_len}.",
            )
        _require(
            not (self.actor_processes and self.actor_devices is not None),
            "learner.actor_devices does not apply with learner.actor_processes=true: an actor "
            "process acts on its own CPU. Set one of the two.",
        )

    @property
    def steps_per_update(self) -> int:
        """Environment steps one update consumes, over all processes."""
        return self.batch_size * self.trajectory_len

    @property
    def total_updates(self) -> int:
        """Updates of the whole run: ceil(total_env_steps / steps_per_update)."""
        return math.ceil(self.total_env_steps / self.steps_per_update)


@dataclasses.dataclass(frozen=True)
class DistributedConfig:
    """Multi-host settings for jax.distributed (None: a single process).

    Attributes:
      coordinator_address: "host:port" of process 0.
      num_processes: how many processes (hosts) take part.
      process_id: this process's index in [0, num_processes).
    """

    coordinator_address: str | None = None
    num_processes: int = 1
    process_id: int = 0

    def __post_init__(self):
        _check_types(self, "distributed")
        _require_positive("distributed.num_processes", self.num_processes)
        _require(
            0 <= self.process_id < self.num_processes,
            f"distributed.process_id={self.process_id} must be in [0, {self.num_processes}).",
        )
        _require(
            self.num_processes == 1 or bool(self.coordinator_address),
            "distributed.coordinator_address is required when num_processes > 1.",
        )


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Where a run writes, how often, and its seed.

    Attributes:
      seed: seeds parameters, environments and action sampling; 0 <= seed < 2**31.
      log_dir: the run's folder (metrics, checkpoints, config); resumed if it holds a checkpoint
        and `resume` is set.
      resume: continue from the latest checkpoint in log_dir.
      log_interval_updates: updates between metric records.
      checkpoint_interval_updates: updates between checkpoints.
      keep_checkpoints: how many of the latest checkpoints to keep.
      eval_episodes: greedy and sampled evaluation episodes at the end (0: none).
      eval_interval_updates: also evaluate every this many updates (greedy and sampled,
        eval_episodes each, on environments of their own), into that update's metrics
        record as eval_greedy_success, eval_sampled_episode_return, ...; None: only at
        the end.
      progress: show a progress bar on the console.
      wandb: also send the metrics records and the summary to Weights & Biases (needs the
        `wandb` package: pip install -e ".[wandb]"; WANDB_MODE=offline logs to disk only).
      wandb_project: the Weights & Biases project of the run.
    """

    seed: int = 0
    log_dir: str = "runs/default"
    resume: bool = False
    log_interval_updates: int = 10
    checkpoint_interval_updates: int = 100
    keep_checkpoints: int = 3
    eval_episodes: int = 100
    eval_interval_updates: int | None = None
    progress: bool = True
    wandb: bool = False
    wandb_project: str = "gtrxl_jax"

    def __post_init__(self):
        _check_types(self, "run")
        _require(0 <= self.seed < 2**31, f"run.seed must be in [0, 2**31), got {self.seed}.")
        _require(self.wandb_project != "" and not set(self.wandb_project) & set("/\\#?%:"),
                 f"run.wandb_project must be a non-empty name without any of / \\ # ? % :, "
                 f"got {self.wandb_project!r}.")
        for name in ("log_interval_updates", "checkpoint_interval_updates", "keep_checkpoints"):
            _require_positive(f"run.{name}", getattr(self, name))
        _require(
            self.eval_episodes >= 0, f"run.eval_episodes must be >= 0, got {self.eval_episodes}."
        )
        _require(
            self.eval_interval_updates is None
            or (self.eval_interval_updates >= 1 and self.eval_episodes >= 1),
            f"run.eval_interval_updates must be None, or >= 1 with run.eval_episodes >= 1; got "
            f"{self.eval_interval_updates} with run.eval_episodes={self.eval_episodes}.",
        )


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything a training run needs; the one place for defaults."""

    env: EnvConfig = dataclasses.field(default_factory=EnvConfig)
    agent: AgentConfig = dataclasses.field(default_factory=AgentConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    optimizer: OptimizerConfig = dataclasses.field(default_factory=OptimizerConfig)
    learner: LearnerConfig = dataclasses.field(default_factory=LearnerConfig)
    distributed: DistributedConfig = dataclasses.field(default_factory=DistributedConfig)
    run: RunConfig = dataclasses.field(default_factory=RunConfig)

    def __post_init__(self):
        _check_types(self, "")


def to_dict(config: Any) -> dict:
    """The config as nested plain dicts (for saving and for comparing with a checkpoint's)."""
    return dataclasses.asdict(config)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): list(tree) if isinstance(tree, tuple) else tree}


def _under(key: str, keys: tuple[str, ...]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in keys)


def config_differences(
    saved: dict,
    current: dict,
    keys: tuple[str, ...] | None = None,
    skip: tuple[str, ...] = (),
    saved_as: str = "in the checkpoint",
    current_as: str = "now",
) -> list[str]:
    """The config entries on which two config dicts differ, one message each.

    Each reads "key: <saved value> <saved_as>, <current value> <current_as>".

    Args:
      saved: a config dict saved earlier (a checkpoint's, a finished run's).
      current: `to_dict` of the config it is compared with.
      keys: compare only these keys and the keys under them (None: every key).
      skip: leave out these keys and the keys under them.
      saved_as: how the messages name the saved side ("in the checkpoint", "then"); a key
        that `saved` lacks reads "<absent>" (`with_new_keys` fills in keys added since).
      current_as: how they name the current side ("now", "here").
    """
    saved_flat, current_flat = _flatten(saved), _flatten(current)
    differences = []
    for key in sorted(set(saved_flat) | set(current_flat)):
        if (keys is not None and not _under(key, keys)) or _under(key, skip):
            continue
        old, new = saved_flat.get(key, "<absent>"), current_flat.get(key, "<absent>")
        if old != new:
            differences.append(f"{key}: {old!r} {saved_as}, {new!r} {current_as}")
    return differences


def with_new_keys(saved: dict, defaults: dict | None = None) -> dict:
    """A saved config dict with the keys added to the config since, at their defaults.

    A new key's default keeps the behaviour from before it, so a run or checkpoint saved
    before the key existed behaved as that default: compared with today's config it differs
    only where today's value does.

    Args:
      saved: a config dict saved earlier (nested, as `to_dict` writes it).
      defaults: the config dict whose values fill the gaps (`to_dict(TrainConfig())`).
    """
    defaults = to_dict(TrainConfig()) if defaults is None else defaults
    filled = dict(saved)
    for key, default in defaults.items():
        if key not in saved:
            filled[key] = default
        elif isinstance(default, dict) and isinstance(saved[key], dict):
            filled[key] = with_new_keys(saved[key], default)
    return filled


def describe_fields(config: Any, prefix: str = "") -> list[tuple[str, Any, str]]:
    """Every leaf field of a (nested) config: (key, value, its docstring's description).

    The descriptions are the "Attributes:" entries of each config class's docstring, so
    `gtrxl-train --help` and the code document a field in one place.
    """
    docs = _attribute_docs(type(config))
    fields = []
    for field in dataclasses.fields(config):
        value, key = getattr(config, field.name), prefix + field.name
        if dataclasses.is_dataclass(value):
            fields += describe_fields(value, key + ".")
        else:
            fields.append((key, value, docs.get(field.name, "")))
    return fields


def _attribute_docs(cls: type) -> dict[str, str]:
    """A Google-style docstring's "Attributes:" entries, each joined into one line."""
    docs: dict[str, str] = {}
    lines = (inspect.getdoc(cls) or "").splitlines()
    if "Attributes:" not in lines:
        return docs
    names: list[str] = []  # the entry being read: "a: ..." or "a, b: ..." (one text for both)
    for line in lines[lines.index("Attributes:") + 1:]:
        entry = re.fullmatch(r"  (\w+(?:, \w+)*): (.*)", line)
        if entry:
            names = entry[1].split(", ")
            docs.update(dict.fromkeys(names, entry[2]))
        elif line.startswith("    ") and names:
            docs.update({name: docs[name] + " " + line.strip() for name in names})
        elif line.strip():
            break
    return docs


def from_dict(cls: type, values: dict) -> Any:
    """Builds a (nested) config dataclass from plain dicts, checking keys and types."""
    return _build(cls, values, prefix="")


def _field_types(cls: type) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in dataclasses.fields(cls)}


def _unknown_key(key: str, known: list[str]) -> ConfigError:
    close = difflib.get_close_matches(key.rsplit(".", 1)[-1], known, n=3)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    return ConfigError(f"Unknown config key {key!r}.{hint} Valid keys here: {sorted(known)}.")


def _build(cls: type, values: dict, prefix: str) -> Any:
    types_ = _field_types(cls)
    kwargs = {}
    for name, value in values.items():
        key = prefix + name
        if name not in types_:
            raise _unknown_key(key, list(types_))
        kwargs[name] = _coerce(types_[name], value, key)
    try:
        return cls(**kwargs)
    except ConfigError:
        raise
    except ValueError as error:  # the core configs raise ValueError with the field named
        raise ConfigError(f"{prefix.rstrip('.') or cls.__name__}: {error}") from error


def _coerce(annotation: Any, value: Any, key: str) -> Any:
    """Converts `value` (possibly a string from the command line) to the annotated type."""
    if dataclasses.is_dataclass(annotation):
        if dataclasses.is_dataclass(value):
            return value
        if not isinstance(value, dict):
            raise ConfigError(f"{key} is a section; set its fields as {key}.<field>=<value>.")
        return _build(annotation, value, key + ".")
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        if value is None or (isinstance(value, str) and value.lower() == "none"):
            if type(None) in args:
                return None
        errors = []
        for arg in (a for a in args if a is not type(None)):
            try:
                return _coerce(arg, value, key)
            except ConfigError as error:
                errors.append(str(error))
        raise ConfigError(errors[0] if errors else f"{key} cannot be {value!r}.")
    if origin is tuple:
        items = value.split(",") if isinstance(value, str) else value
        if not isinstance(items, list | tuple):
            raise ConfigError(f"{key} must be a comma-separated list, got {value!r}.")
        item_type = args[0] if args else str
        return tuple(_coerce(item_type, item, key) for item in items if item != "")
    if annotation is dict or origin is dict:
        if isinstance(value, str):
            raise ConfigError(f"{key} is a dict; set its entries as {key}.<name>=<value>.")
        return dict(value)
    if annotation is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "false", "1", "0", "yes", "no"):
            return value.lower() in ("true", "1", "yes")
        raise ConfigError(f"{key} must be true or false, got {value!r}.")
    if annotation in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{key} must be {_ARTICLE_TYPE[annotation]}, got {value!r}.")
        try:  # an int may be written as an integral float: total_env_steps=1e6
            number = _parse_number(value) if isinstance(value, str) else value
        except ValueError:
            raise ConfigError(
                f"{key} must be {_ARTICLE_TYPE[annotation]}, got {value!r}."
            ) from None
        if annotation is int and (not isinstance(number, int) or isinstance(number, bool)):
            if isinstance(number, float) and number.is_integer():
                return int(number)
            raise ConfigError(f"{key} must be an int, got {value!r}.")
        if annotation is float and isinstance(number, int):
            return float(number)
        if not isinstance(number, annotation):
            raise ConfigError(f"{key} must be {_ARTICLE_TYPE[annotation]}, got {value!r}.")
        return number
    if annotation is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}.")
        return value
    return value  # Any: taken as given.


def _parse_number(text: str) -> int | float:
    """An int literal as an int, any other number literal as a float (ValueError if neither)."""
    try:
        return int(text)
    except ValueError:
        return float(text)


def _parse_scalar(text: str) -> Any:
    """A dict entry's command-line value: an int, float, bool, a tuple if comma-separated, or text.

    "128,128" is (128, 128) and "128," is (128,), as tuple fields are written; an integral
    number in exponent form ("1e6") is an int, as numbers may be written anywhere else.
    """
    if "," in text:
        return tuple(_parse_scalar(item) for item in text.split(",") if item != "")
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        written_as_power = "." not in text and "e" in text.lower()  # "1e6", not "1.0"
        if written_as_power and math.isfinite(value) and value.is_integer():
            return int(value)
        return value
    if text.lower() in ("true", "false"):
        return text.lower() == "true"
    return text


def apply_overrides(config: TrainConfig, overrides: list[str]) -> TrainConfig:
    """Applies `section.field=value` overrides (nested with dots) and re-validates.

    Args:
      config: the base configuration.
      overrides: strings like "agent.transformer.memory_len=64" or
        "env.options.max_episode_steps=500".

    Returns:
      The new, validated TrainConfig.

    Raises:
      ConfigError: a malformed override, an unknown key (with close matches), a value of the
        wrong type or an impossible value, naming the key.
    """
    values = to_dict(config)
    for override in overrides:
        if "=" not in override:
            raise ConfigError(f"Override {override!r} must look like section.field=value.")
        key, text = override.split("=", 1)
        path = key.strip().split(".")
        node, cls = values, TrainConfig
        for depth, part in enumerate(path[:-1]):
            if cls is dict:  # inside a free-form dict such as env.options
                node = node.setdefault(part, {})
                if not isinstance(node, dict):
                    raise ConfigError(f"{'.'.join(path[: depth + 1])} is a value, not a section.")
                continue
            types_ = _field_types(cls)
            if part not in types_:
                raise _unknown_key(".".join(path[: depth + 1]), list(types_))
            annotation = types_[part]
            if not (dataclasses.is_dataclass(annotation) or annotation is dict):
                raise ConfigError(f"{'.'.join(path[: depth + 1])} is a value, not a section.")
            cls = annotation
            node = node[part]
        leaf = path[-1]
        if cls is dict:
            node[leaf] = _parse_scalar(text)
        else:
            types_ = _field_types(cls)
            if leaf not in types_:
                raise _unknown_key(key, list(types_))
            node[leaf] = text
    return from_dict(TrainConfig, values)


def load_config(path: str | None, overrides: list[str] = ()) -> TrainConfig:
    """Loads a config file (a Python file defining `get_config() -> TrainConfig`) and overrides.

    Args:
      path: the config file, or None for the defaults.
      overrides: key=value strings (see apply_overrides).
    """
    config = TrainConfig()
    if path is not None:
        file = Path(path)
        if not file.is_file():
            raise ConfigError(f"Config file {path!r} does not exist.")
        spec = importlib.util.spec_from_file_location(f"gtrxl_config_{file.stem}", file)
        module = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(module)
            if not hasattr(module, "get_config"):
                raise ConfigError(f"Config file {path!r} must define get_config() -> TrainConfig.")
            config = module.get_config()
        except ConfigError:
            raise
        except Exception as error:  # the user's file: e.g. an unknown keyword of a section
            raise ConfigError(
                f"{path}: building the config failed: {type(error).__name__}: {error}"
            ) from error
        if not isinstance(config, TrainConfig):
            raise ConfigError(
                f"{path}: get_config() returned {type(config).__name__}, not TrainConfig."
            )
    return apply_overrides(config, list(overrides))
