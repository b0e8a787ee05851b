"""Checkpoints of a run with orbax: the learner state, the counters and the config.

A checkpoint is a folder `<log_dir>/checkpoints/<update>/` holding
  state/  the LearnerState (params, optimiser state, PopArt statistics, update count,
          skipped-update count, RNG key), and
  meta/   JSON: {"config": the run's config, "update": ..., "env_steps": ...,
          "wall_clock_s": training seconds up to this update, over every session,
          "nonfinite_streak": the skipped updates in a row that end at this update}.
orbax writes each one to `<update>.orbax-checkpoint-tmp/` and renames it when complete, so a
run killed while saving leaves its earlier checkpoints intact and the partial one is never
read (leftovers are deleted when the folder is next opened). Saves run in the background;
a failed write (a full disk) is reported, as CheckpointError, by the next save or `close`.

A run resumes only from a checkpoint of the same model: the STATE_KEYS of the config must
agree, and the saved arrays must have the paths, shapes and dtypes of the run's own learner
state; otherwise the error names the config keys and the arrays that differ.
"""

import logging
import time
from pathlib import Path
from typing import Any, NamedTuple

import jax
import numpy as np
import orbax.checkpoint as ocp

from gtrxl_jax.config import TrainConfig, config_differences, to_dict, with_new_keys

# How long a failed save's other writes may take to stop before the error is raised anyway.
_FAILED_WRITE_TIMEOUT_S = 60.0

logger = logging.getLogger(__name__)

# Config keys that decide what the saved state is: the parameters' structure and meaning (the
# agent, the tasks) and the optimiser state's structure. A run resumes only if they agree
# (the agent's keys its core does not read excepted: `AgentConfig.unread_keys`). Other keys
# may change on resume (they are logged); env.options is not compared, as most of envpool's
# options (threads, episode limits) leave the state as it is, and one that changes the
# observation changes the parameters' shapes, which `restore` checks.
STATE_KEYS = ("agent", "env.task", "env.factory", "loss.popart", "optimizer.name",
              "optimizer.schedule")


class Progress(NamedTuple):
    """How far a run has trained, over all its sessions (a resumed run continues both)."""

    env_steps: int  # environment steps the learner has consumed
    wall_clock_s: float  # seconds of training
    # Skipped (non-finite) updates in a row up to here: a resumed run's streak goes on from
    # it, so it stops at the update the uninterrupted run would have stopped at.
    nonfinite_streak: int = 0

    def after(self, env_steps: int, session_start: float, nonfinite_streak: int) -> "Progress":
        """Progress continued to `env_steps` by a session begun at `session_start`.

        Args:
          env_steps: the env steps reached now.
          session_start: the session's start, a `time.monotonic()` reading.
          nonfinite_streak: the skipped updates in a row now (`UpdateLog.nonfinite_streak`).
        """
        return Progress(env_steps, self.wall_clock_s + time.monotonic() - session_start,
                        nonfinite_streak)


def progress_of(meta: dict) -> Progress:
    """The progress a checkpoint's meta dict records.

    A checkpoint written before the meta held the training time counts as 0 s of it: a run
    resumed from one reports the time of its later sessions only, and says so in the log.
    """
    if "wall_clock_s" not in meta:
        logger.warning("The checkpoint of update %d does not record the training time before "
                       "it; the run's wall_clock_s will count from this session on.",
                       meta["update"])
    return Progress(int(meta["env_steps"]), float(meta.get("wall_clock_s", 0.0)),
                    int(meta.get("nonfinite_streak", 0)))


class CheckpointError(RuntimeError):
    """A checkpoint is missing, unreadable, unwritable or from a different model configuration."""


def _array_layout(tree: Any) -> dict[str, tuple]:
    """Path -> (shape, dtype) of every array of a state or of orbax's metadata of one."""
    flat = ocp.tree.to_flat_dict(tree)
    return {"/".join(path): (tuple(leaf.shape), np.dtype(leaf.dtype).name)
            for path, leaf in flat.items() if hasattr(leaf, "shape")}


def _describe(entry: tuple | None) -> str:
    return "absent" if entry is None else f"{entry[1]}{list(entry[0])}"


def layout_differences(saved: dict[str, tuple], wanted: dict[str, tuple]) -> list[str]:
    """How the saved arrays differ from the ones a run needs, one line per subtree.

    Arrays are grouped by the first two parts of their path (e.g. "opt_state/0",
    "params/core"), each group named with its first differing array.

    Args:
      saved: path -> (shape, dtype) of the checkpoint's arrays (see `_array_layout`).
      wanted: the same of the run's own learner state.
    """
    groups: dict[str, list[str]] = {}
    for path in sorted(set(saved) | set(wanted)):
        if saved.get(path) != wanted.get(path):
            groups.setdefault("/".join(path.split("/")[:2]), []).append(
                f"{path}: {_describe(saved.get(path))} in the checkpoint, "
                f"{_describe(wanted.get(path))} now")
    return [lines[0] if len(lines) == 1 else f"{group}: {len(lines)} arrays differ, e.g. "
            f"{lines[0]}" for group, lines in groups.items()]


class Checkpointer:
    """Writes and reads the checkpoints of one run folder."""

    def __init__(self, log_dir: str, keep: int, read_only: bool = False):
        """Open `<log_dir>/checkpoints` (created by the first save, not before).

        Args:
          log_dir: the run's folder.
          keep: how many of the latest checkpoints to keep.
          read_only: only read (e.g. to evaluate a run that may still be training there):
            save nothing and delete nothing, partial checkpoints included.

        Raises:
          CheckpointError: `<log_dir>/checkpoints` exists but is not a folder, or the
            partial checkpoints in it cannot be deleted.
        """
        self.directory = Path(log_dir).absolute() / "checkpoints"
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointError(
                f"{self.directory} is not a folder of checkpoints; choose another run.log_dir.")
        options = ocp.CheckpointManagerOptions(
            max_to_keep=keep, create=False, cleanup_tmp_directories=not read_only,
            read_only=read_only)
        self._manager = ocp.CheckpointManager(
            self.directory, options=options,
            item_handlers={"state": ocp.StandardCheckpointHandler(),
                           "meta": ocp.JsonCheckpointHandler()})
        self._pending: int | None = None  # the update whose save may still be in progress
        if not read_only:
            self._await_cleanup()

    def _await_cleanup(self) -> None:
        """Wait for orbax to delete the partial checkpoints it found on opening the folder.

        orbax deletes them in a thread that only its next save waits for. A run that stops
        before saving (nothing to resume from, a bad config) would leave that thread to run
        into the interpreter's shutdown, which prints a traceback after the run's one-line
        error ("cannot schedule new futures after interpreter shutdown"). CheckpointManager
        has no public method for this wait; the orbax version is pinned in requirements.txt.

        Raises:
          CheckpointError: the partial checkpoints cannot be deleted.
        """
        try:
            self._manager._maybe_await_cleanup_tmp_directory()
        except Exception as error:
            self._manager.close()
            raise CheckpointError(
                f"Cannot delete the partial checkpoints in {self.directory}: "
                f"{type(error).__name__}: {error}. Fix the folder's permissions or choose "
                "another run.log_dir.") from error

    def latest_update(self) -> int | None:
        """The update of the latest complete checkpoint, or None if there is none."""
        return self._manager.latest_step()

    def updates(self) -> list[int]:
        """The updates of the folder's complete checkpoints now (read afresh), ascending."""
        return sorted(self._manager.all_steps(read=True))

    def discard_after(self, update: int) -> None:
        """Delete the checkpoints of updates after `update`.

        For a run resumed from an earlier checkpoint than its latest (seeds resumed
        together): orbax writes no checkpoint older than the folder's latest, so the run
        would otherwise save nothing until it passed the stale one.
        """
        for step in self._manager.all_steps(read=True):
            if step > update:
                self._manager.delete(step)

    def save(self, state: Any, config: TrainConfig, progress: Progress) -> None:
        """Save a checkpoint (in the background) unless this update already has one.

        Args:
          state: the LearnerState as host arrays (one copy, not replicated).
          config: the run's config.
          progress: the env steps, training time and non-finite streak the state stands for.

        Raises:
          CheckpointError: this save or the previous one (still in the background) failed,
            e.g. on a full disk; the checkpoints completed before are intact.
        """
        self._finish_pending()
        update = int(state.update)
        if update in self._manager.all_steps():
            return
        meta = {"config": to_dict(config), "update": update,
                "env_steps": int(progress.env_steps),
                "wall_clock_s": float(progress.wall_clock_s),
                "nonfinite_streak": int(progress.nonfinite_streak)}
        state = jax.tree.map(np.asarray, state)
        try:
            self._manager.save(update, args=ocp.args.Composite(
                state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)))
        except Exception as error:  # orbax and tensorstore raise several types
            raise self._write_error(update, error) from error
        self._pending = update
        logger.info("Checkpoint of update %d being written to %s", update, self.directory)

    def _finish_pending(self) -> None:
        """Wait for the background save, turning its failure into a CheckpointError."""
        update, self._pending = self._pending, None
        try:
            self._manager.wait_until_finished()
        except Exception as error:
            raise self._write_error(update, error) from error

    def _await_failed_writes(self) -> None:
        """Wait until no write of a failed save is still running.

        orbax stops waiting for a save at its first failed write, so the others (the state's
        arrays, when the metadata failed) could still land in the partial checkpoint after
        the error, and a Checkpointer opened on the folder in the same process would find
        it being written while it deletes it. The commit futures are not public API; the
        orbax version is pinned in requirements.txt.
        """
        checkpointer = getattr(self._manager, "_checkpointer", None)
        async_manager = getattr(checkpointer, "_async_manager", None)
        for write in getattr(async_manager, "_commit_futures", None) or ():
            try:
                write.result(timeout=_FAILED_WRITE_TIMEOUT_S)
            except Exception:  # the save's error is already being raised
                pass

    def _write_error(self, update: int | None, error: Exception) -> CheckpointError:
        self._await_failed_writes()
        complete = self._manager.all_steps()
        return CheckpointError(
            f"Writing the checkpoint of update {update} to {self.directory} failed: "
            f"{type(error).__name__}: {error}. The complete checkpoints there "
            f"({complete or 'none'}) are intact and a partial one is never read; free disk "
            "space or fix the folder's permissions, then continue with run.resume=true.")

    def restore(self, target: Any, config: TrainConfig,
                update: int | None = None) -> tuple[Any, dict]:
        """Restore a complete checkpoint, the latest by default.

        Args:
          target: a state of the right structure (host arrays), e.g. a fresh one: the
            loop's LearnerState or RunnerState.
          config: the config of the run that resumes; its STATE_KEYS must match the
            checkpoint's.
          update: the checkpoint's update (None: the latest).

        Returns:
          (state, meta): the restored LearnerState (host arrays) and the checkpoint's meta
          dict {"config", "update", "env_steps", "wall_clock_s"} (see `progress_of`).

        Raises:
          CheckpointError: no complete checkpoint, a different model config (naming the
            keys that differ), arrays that do not fit the target (naming them), or a
            checkpoint that cannot be read.
        """
        meta = self.read_meta(config, update)
        path = self.directory / str(meta["update"])
        changed = config_differences(with_new_keys(meta["config"]), to_dict(config),
                                     skip=("run.resume", "run.log_dir"))  # the folder itself
        try:
            saved = _array_layout(self._manager.item_metadata(meta["update"])["state"].tree)
        except Exception as error:
            raise self._unreadable(path, "the learner state's metadata", error) from error
        wanted = _array_layout(ocp.tree.serialize_tree(jax.tree.map(np.asarray, target),
                                                       keep_empty_nodes=True))
        mismatched = layout_differences(saved, wanted)
        if mismatched:
            raise CheckpointError(
                f"The learner state in {path} does not fit this run's:\n  "
                + "\n  ".join(mismatched)
                + "\nConfig keys that differ from the checkpoint's:\n  "
                + "\n  ".join(changed or ["none"])
                + "\nResume with the checkpoint's values of these keys, or start a new run in "
                "another run.log_dir.")
        try:
            state = self._manager.restore(meta["update"], args=ocp.args.Composite(
                state=ocp.args.StandardRestore(jax.tree.map(np.asarray, target))))["state"]
        except Exception as error:
            raise self._unreadable(path, "the learner state", error) from error
        if changed:
            logger.info("Resuming with changed settings:\n  %s", "\n  ".join(changed))
        return state, meta

    def read_meta(self, config: TrainConfig, update: int | None = None) -> dict:
        """A complete checkpoint's meta dict (the latest by default), checked against a config.

        Cheap (JSON only): `train` calls it before any expensive work.

        Raises:
          CheckpointError: no complete checkpoint, an unreadable one, or one whose
            STATE_KEYS differ from `config`'s (naming the keys).
        """
        update = self.latest_update() if update is None else update
        if update is None:
            raise CheckpointError(
                f"run.resume=true, but {self.directory} holds no complete checkpoint to "
                "resume from.")
        path = self.directory / str(update)
        try:
            meta = self._manager.restore(update, args=ocp.args.Composite(
                meta=ocp.args.JsonRestore()))["meta"]
            saved_config = meta["config"]
        except Exception as error:
            raise self._unreadable(path, "the checkpoint's metadata", error) from error
        differences = config_differences(with_new_keys(saved_config), to_dict(config),
                                         STATE_KEYS, skip=config.agent.unread_keys())
        if differences:
            raise CheckpointError(
                f"The checkpoint in {path} comes from a different model config; these keys "
                "differ:\n  " + "\n  ".join(differences)
                + "\nResume with the checkpoint's values, or start a new run in another "
                "run.log_dir.")
        return meta

    def _unreadable(self, path: Path, what: str, error: Exception) -> CheckpointError:
        earlier = [step for step in self._manager.all_steps() if str(step) != path.name]
        hint = (f" Move it away to resume from update {max(earlier)}." if earlier else "")
        return CheckpointError(f"Cannot read {what} in {path}: {type(error).__name__}: {error}. "
                               f"It is not a complete checkpoint (corrupt, or not written by "
                               f"gtrxl-train).{hint}")

    def close(self) -> None:
        """Wait for checkpoints being written and release the manager.

        Raises:
          CheckpointError: the last save failed (the manager is released all the same).
        """
        try:
            self._finish_pending()
        finally:
            self._manager.close()
