"""Non-finite updates: count the skipped ones in a row, and say where the NaN came from.

The learner skips an update whose loss, gradients, resulting parameters or PopArt statistics
are not finite (`learning.Learning.update`), so the parameters, and every checkpoint, stay finite.
`NonFiniteStreak` ends the run after `learner.max_nonfinite_updates` such updates in a row
with a message that says which part was not finite, which inputs of the last batch held
non-finite values, and, when the loss was finite, which parameters' gradients were not.
"""

import logging
from collections.abc import Callable

import jax
import numpy as np

from gtrxl_jax.train.learning import LearnerState, Learning, NonFiniteError
from gtrxl_jax.train.placement import first_replica
from gtrxl_jax.train.types import Trajectory

logger = logging.getLogger(__name__)

_LISTED = 5  # gradient paths named in a message

# An update's metrics that are 1.0 where it was skipped (`Learning.update`), 0.0 elsewhere.
SKIP_FLAGS = ("nonfinite_loss", "nonfinite_grads", "nonfinite_params")


def was_skipped(metrics: dict) -> bool:
    """Whether an update was skipped, from its metrics (host floats)."""
    return any(metrics.get(flag, 0.0) > 0 for flag in SKIP_FLAGS)


def nonfinite_part(metrics: dict) -> str | None:
    """What was not finite in an update (from its metrics), or None if everything was."""
    if metrics["nonfinite_loss"] > 0:
        return "the loss was not finite"
    if metrics["nonfinite_grads"] > 0:
        return "the gradients were not finite (the loss was finite)"
    if metrics.get("nonfinite_params", 0.0) > 0:
        return ("the updated parameters or PopArt statistics were not finite (the loss and "
                "gradients were: a step too large, or returns beyond float32's range)")
    return None


def nonfinite_inputs(batch: Trajectory) -> list[str]:
    """The floating-point fields of a batch that hold non-finite values, with their counts.

    Args:
      batch: trajectories [T+1, B] (host arrays; the core state may be on a device).

    Returns:
      Lines such as "inputs.prev_reward (the rewards): 3 of 36 values".
    """
    fields = {
        "inputs.observation": batch.inputs.observation,
        "inputs.prev_reward (the rewards)": batch.inputs.prev_reward,
        "discount": batch.discount,
        "behaviour_logits (the actors' policy)": batch.behaviour_logits,
        "core_state (the memory at the trajectories' start)": batch.core_state,
    }
    lines = []
    for name, tree in fields.items():
        for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
            values = np.asarray(leaf)
            if not np.issubdtype(values.dtype, np.floating):
                continue
            bad = values.size - np.count_nonzero(np.isfinite(values))
            if bad:
                lines.append(f"{name}{jax.tree_util.keystr(path)}: {bad} of {values.size} values")
    return lines


def explain(learning: Learning, state: LearnerState, batch: Trajectory, metrics: dict) -> list[str]:
    """Where a skipped update's non-finite values came from, as message lines.

    Args:
      learning: the learner's update.
      state: the replicated state after the skipped update, not yet donated to the next one
        (a skipped update leaves the parameters and PopArt statistics as it found them).
      batch: the skipped update's batch [T+1, B_local] (`types.Trajectory`).
      metrics: the skipped update's metrics (host floats).
    """
    inputs = nonfinite_inputs(batch)
    lines = (["non-finite inputs in the last batch: " + "; ".join(inputs)] if inputs
             else ["the last batch's inputs were all finite"])
    if metrics["nonfinite_loss"] == 0 and metrics["nonfinite_grads"] > 0:
        paths = learning.nonfinite_gradients(first_replica(state.params),
                                              first_replica(state.popart), batch)
        more = f" and {len(paths) - _LISTED} more" if len(paths) > _LISTED else ""
        lines.append(f"non-finite gradients of {len(paths)} parameter arrays: "
                     + ", ".join(paths[:_LISTED]) + more)
    return lines


class NonFiniteStreak:
    """Counts consecutive skipped (non-finite) updates and ends the run after too many."""

    def __init__(self, limit: int, streak: int = 0):
        """Allow up to `limit` skipped updates in a row, `streak` of them already skipped."""
        self._limit = limit
        self._streak = streak

    @property
    def count(self) -> int:
        """The skipped updates in a row so far."""
        return self._streak

    def check(
        self, metrics: dict, update: int, explain: Callable[[], list[str]] | None = None
    ) -> None:
        """Update the streak from one update's metrics.

        Args:
          metrics: the update's metrics (host floats), with nonfinite_loss, nonfinite_grads
            and nonfinite_params.
          update: the update's number.
          explain: called once the limit is reached, for lines that say where the non-finite
            values came from (see `explain`).

        Raises:
          NonFiniteError: `limit` updates in a row were skipped; says which part (the loss,
            the gradients or the updated parameters) was not finite, and where.
        """
        where = nonfinite_part(metrics)
        if where is None:
            self._streak = 0
            return
        self._streak += 1
        logger.warning("Update %d skipped: %s (%d in a row).", update, where, self._streak)
        if self._streak >= self._limit:
            details = explain() if explain is not None else []
            raise NonFiniteError(
                f"Stopping: {self._streak} updates in a row (up to update {update}) were skipped "
                f"because {where} (learner.max_nonfinite_updates={self._limit}). "
                "The parameters, and the final checkpoint, are those before the first skipped "
                "update. Check the inputs named below, or lower optimizer.learning_rate."
                + "".join(f"\n  {line}" for line in details))
