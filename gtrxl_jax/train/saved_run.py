"""A training run read back from its folder: its config, its agent and one checkpoint's parameters.

    run = load_run("runs/tmaze")                  # the latest checkpoint
    run = load_run("runs/tmaze", checkpoint=500)  # the checkpoint of update 500
    run.agent, run.params, run.update, run.env_steps, run.config, run.loop

The config comes from the folder's config.json; the checkpoint is restored into a template
of the state its loop saves (`builder.resolve_loop`): the actor-learner's LearnerState or
the on-device loop's RunnerState, which holds the learner's. The folder is only read, so a
run may still be training in it.
"""

import dataclasses
import functools
import json
from pathlib import Path
from typing import Any

import jax
import numpy as np

from gtrxl_jax.agent import Agent
from gtrxl_jax.config import TrainConfig, from_dict
from gtrxl_jax.envs import EnvSpec
from gtrxl_jax.train import builder
from gtrxl_jax.train.checkpoint import Checkpointer, CheckpointError
from gtrxl_jax.train.on_device import OnDevice


class RunFolderError(ValueError):
    """A folder that is not a training run, or a checkpoint that the run does not hold."""


@dataclasses.dataclass(frozen=True)
class SavedRun:
    """One checkpoint of a training run, ready to act.

    Attributes:
      folder: the run's folder.
      config: its config (run.log_dir set to `folder`).
      loop: "actor_learner" or "on_device", the loop that trained it.
      tasks: its task names.
      spec: the environment spec its agent was built for (of the first task).
      agent: the agent.
      params: the checkpoint's parameters (host arrays).
      update: the checkpoint's update.
      env_steps: the environment steps trained on up to it.
    """

    folder: Path
    config: TrainConfig
    loop: str
    tasks: tuple[str, ...]
    spec: EnvSpec
    agent: Agent
    params: Any
    update: int
    env_steps: int


def checkpoint_updates(folder: str | Path) -> list[int]:
    """The updates of a run folder's complete checkpoints, ascending ([] if none)."""
    reader = _reader(Path(folder))
    try:
        return reader.updates()
    finally:
        reader.close()


def _reader(folder: Path) -> Checkpointer:
    """The run's checkpoints, opened read-only (the run may still be training there)."""
    return Checkpointer(str(folder), keep=1, read_only=True)


def load_run(folder: str | Path, checkpoint: int | None = None) -> SavedRun:
    """Read a run's config and restore one of its checkpoints.

    Args:
      folder: the run's folder (its run.log_dir).
      checkpoint: the update of the checkpoint to restore; None for the latest.

    Raises:
      RunFolderError: the folder has no config.json or no complete checkpoint, or not the
        one asked for (the message lists those it has).
      ConfigError: its config.json is not a valid config of this version.
      CheckpointError: the checkpoint cannot be read, does not fit the config, or was
        deleted while it was read (a run still training keeps only its latest few).
    """
    folder = Path(folder)
    config_file = folder / "config.json"
    if not folder.is_dir():
        raise RunFolderError(f"{folder} is not a folder.")
    if not config_file.is_file():
        raise RunFolderError(f"{folder} is not a training run: it has no config.json "
                             "(gtrxl-train writes one into its run.log_dir).")
    try:
        config = from_dict(TrainConfig, json.loads(config_file.read_text()))
    except json.JSONDecodeError as error:
        raise RunFolderError(f"{config_file} is not valid JSON ({error}); gtrxl-train wrote "
                             "it at the run's start: restore it from a copy of the run.") from None
    # The folder may have moved since; W&B is the training's business, not the reader's.
    config = dataclasses.replace(config, run=dataclasses.replace(
        config.run, log_dir=str(folder), wandb=False))
    reader = _reader(folder)
    try:
        updates = reader.updates()
        if not updates:
            raise RunFolderError(f"{folder} holds no complete checkpoint yet.")
        if checkpoint is not None and checkpoint not in updates:
            raise RunFolderError(f"{folder} has no checkpoint of update {checkpoint}; it has "
                                 f"{', '.join(map(str, updates))}.")
        update = updates[-1] if checkpoint is None else checkpoint
        layout, spec = builder.check_config(config, writable_log_dir=False)
        agent = builder.make_agent(config, spec, len(layout.tasks))
        loop = builder.resolve_loop(config)
        try:
            state, meta = reader.restore(_template(config, agent, layout, loop), config, update)
        except CheckpointError as error:
            if update in reader.updates():
                raise
            raise CheckpointError(
                f"The checkpoint of update {update} in {folder} was deleted while it was "
                f"read: the run keeps only its latest run.keep_checkpoints="
                f"{config.run.keep_checkpoints}. Try again, or choose one of "
                f"{', '.join(map(str, reader.updates()))}.") from error
    finally:
        reader.close()
    params = state.learner.params if loop == "on_device" else state.params
    return SavedRun(folder=folder, config=config, loop=loop, tasks=layout.tasks, spec=spec,
                    agent=agent, params=params, update=int(meta["update"]),
                    env_steps=int(meta["env_steps"]))


def _template(config: TrainConfig, agent: Agent, layout, loop: str) -> Any:
    """Zeros with the structure, shapes and dtypes of the state the run's loop checkpoints.

    Shapes come from `jax.eval_shape`, so nothing is compiled; the on-device state is that
    of all the run's environments, whatever the devices here.
    """
    if loop == "on_device":
        program = OnDevice.for_config(config, agent, layout, jax.local_devices()[:1])
        init = functools.partial(program.init, seed=config.run.seed)
    else:
        init = builder.make_learning(config, agent, layout).init_state
    shapes = jax.eval_shape(init, jax.random.PRNGKey(config.run.seed))
    return jax.tree.map(lambda s: np.zeros(s.shape, s.dtype), shapes)
