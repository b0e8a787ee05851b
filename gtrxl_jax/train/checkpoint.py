"""Checkpoints of a run with orbax: the learner state, the counters and the config.

A checkpoint is a folder `<log_dir>/checkpoints/<update>/` holding
  state/  the LearnerState (params, optimiser state, PopArt statistics, update count,
          skipped-update count, RNG key), and
  meta/   JSON: {"config": the run's config, "update": ..., "env_steps": ...}.
orbax writes each one to a temporary folder and renames it when complete, so a run killed
while saving leaves its earlier checkpoints intact and the partial one is never read.
"""

import logging
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from gtrxl_jax.config import TrainConfig, to_dict

logger = logging.getLogger(__name__)

# Config keys that decide the shapes in a checkpoint: a run resumes only if they agree.
MODEL_KEYS = ("agent", "env.task", "loss.popart", "optimizer.name")


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable or from a different model configuration."""


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict):
        flat = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
        return flat
    return {prefix.rstrip("."): list(tree) if isinstance(tree, tuple) else tree}


def model_config_differences(saved: dict, current: dict) -> list[str]:
    """The MODEL_KEYS entries on which two config dicts differ, as "key: saved -> current".

    Args:
      saved: the config dict stored in a checkpoint.
      current: `to_dict` of the config of the run that wants to resume.
    """
    saved_flat, current_flat = _flatten(saved), _flatten(current)
    differences = []
    for key in sorted(set(saved_flat) | set(current_flat)):
        if not any(key == k or key.startswith(k + ".") for k in MODEL_KEYS):
            continue
        old, new = saved_flat.get(key, "<absent>"), current_flat.get(key, "<absent>")
        if old != new:
            differences.append(f"{key}: {old!r} in the checkpoint, {new!r} now")
    return differences


class Checkpointer:
    """Writes and reads the checkpoints of one run folder."""

    def __init__(self, log_dir: str, keep: int):
        """Open (or create) `<log_dir>/checkpoints`.

        Args:
          log_dir: the run's folder.
          keep: how many of the latest checkpoints to keep.
        """
        self.directory = Path(log_dir).absolute() / "checkpoints"
        options = ocp.CheckpointManagerOptions(max_to_keep=keep, create=True)
        self._manager = ocp.CheckpointManager(
            self.directory, options=options, item_names=("state", "meta"))

    def latest_update(self) -> int | None:
        """The update of the latest complete checkpoint, or None if there is none."""
        return self._manager.latest_step()

    def save(self, state: Any, config: TrainConfig, env_steps: int) -> None:
        """Save a checkpoint (in the background) unless this update already has one.

        Args:
          state: the LearnerState as host arrays (one copy, not replicated).
          config: the run's config.
          env_steps: environment steps the learner has consumed.
        """
        update = int(state.update)
        if update in self._manager.all_steps():
            return
        meta = {"config": to_dict(config), "update": update, "env_steps": int(env_steps)}
        state = jax.tree.map(np.asarray, state)
        self._manager.save(update, args=ocp.args.Composite(
            state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
        logger.info("Checkpoint of update %d written to %s", update, self.directory)

    def restore(self, target: Any, config: TrainConfig) -> tuple[Any, dict]:
        """Restore the latest complete checkpoint.

        Args:
          target: a LearnerState of the right structure (host arrays), e.g. a fresh one.
          config: the config of the run that resumes; its MODEL_KEYS must match the
            checkpoint's.

        Returns:
          (state, meta): the restored LearnerState (host arrays) and the checkpoint's meta
          dict {"config", "update", "env_steps"}.

        Raises:
          CheckpointError: no complete checkpoint, a different model config (naming the
            keys that differ), or a checkpoint that cannot be read.
        """
        update = self.latest_update()
        if update is None:
            raise CheckpointError(
                f"run.resume=true, but {self.directory} holds no complete checkpoint to "
                "resume from.")
        path = self.directory / str(update)
        try:
            meta = self._manager.restore(update, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore()))["meta"]
        except Exception as error:
            raise CheckpointError(f"Cannot read the checkpoint metadata in {path}: {error}. "
                                  "The checkpoint is incomplete or corrupt.") from error
        differences = model_config_differences(meta["config"], to_dict(config))
        if differences:
            raise CheckpointError(
                f"The checkpoint in {path} comes from a different model config; these keys "
                "differ:\n  " + "\n  ".join(differences))
        try:
            state = self._manager.restore(update, args=ocp.args.Composite(
                state=ocp.args.StandardRestore(jax.tree.map(np.asarray, target))))["state"]
        except Exception as error:
            raise CheckpointError(f"Cannot restore the learner state from {path}: {error}. "
                                  "The checkpoint is incomplete or corrupt.") from error
        return state, meta

    def close(self) -> None:
        """Wait for checkpoints being written and release the manager."""
        self._manager.wait_until_finished()
        self._manager.close()
