"""The host's log of dispatched updates (UpdateLog): what it reads when, and what it writes."""

import jax.numpy as jnp
import pytest

from gtrxl_jax.envs.episodes import EpisodeTotals
from gtrxl_jax.train.learning import NonFiniteError
from gtrxl_jax.train.nonfinite import NonFiniteStreak
from gtrxl_jax.train.update_log import UpdateLog


class RecordingLogger:
    """Stands in for MetricsLogger: remembers what it was given."""

    def __init__(self):
        self.added, self.written = [], []

    def add_update(self, metrics, episodes, env_steps):
        self.added.append((metrics, episodes, env_steps))

    def write(self, update, env_steps, extra):
        self.written.append((update, env_steps, extra))


def device_metrics(loss: float, nonfinite_loss: float = 0.0) -> dict:
    return {"loss": jnp.float32(loss), "nonfinite_loss": jnp.float32(nonfinite_loss),
            "nonfinite_grads": jnp.float32(0.0), "nonfinite_params": jnp.float32(0.0)}


def with_one_episode(metrics):
    return {**metrics, "learner_wait_s": 0.5}, {"task": EpisodeTotals(episodes=1.0)}


def test_it_reads_all_but_the_newest_updates_and_writes_at_the_interval():
    logger = RecordingLogger()
    log = UpdateLog(logger, NonFiniteStreak(3), log_interval_updates=2,
                    checkpoint_interval_updates=100, extra=lambda: {"actor_sps": 7.0})
    for update in (1, 2, 3):
        log.add(update, 100 * update, device_metrics(float(update)), with_one_episode)
        log.log_finished(keep=1)
    assert [added[2] for added in logger.added] == [100, 200]  # update 3 is still unread
    assert logger.added[1][0] == {"loss": 2.0, "nonfinite_loss": 0.0, "nonfinite_grads": 0.0,
                                  "nonfinite_params": 0.0, "learner_wait_s": 0.5}
    assert logger.added[1][1] == {"task": EpisodeTotals(episodes=1.0)}
    assert logger.written == [(2, 200, {"actor_sps": 7.0})]
    log.add_evaluation(3, {"eval_greedy_success": 1.0})
    log.log_finished(keep=0)
    assert logger.written[-1] == (3, 300, {"actor_sps": 7.0, "eval_greedy_success": 1.0})


def test_a_record_is_also_written_at_each_checkpoint():
    """A run resumed from a checkpoint keeps the records up to it: the updates since the
    last record must be in one."""
    logger = RecordingLogger()
    log = UpdateLog(logger, NonFiniteStreak(3), log_interval_updates=4,
                    checkpoint_interval_updates=3)
    for update in range(1, 9):
        log.add(update, 10 * update, device_metrics(float(update)), with_one_episode)
    log.log_finished(keep=0)
    assert [written[0] for written in logger.written] == [3, 4, 6, 8]


def test_a_streak_of_skipped_updates_raises_with_the_explanation_of_the_last():
    explained = []

    def explain(update, metrics):
        explained.append((update, metrics["nonfinite_loss"]))
        return [f"update {update} explained"]

    log = UpdateLog(RecordingLogger(), NonFiniteStreak(2), log_interval_updates=10,
                    checkpoint_interval_updates=100)
    for update in (1, 2):
        log.add(update, update, device_metrics(float("nan"), nonfinite_loss=1.0),
                with_one_episode, explain=lambda metrics, update=update: explain(update, metrics))
    with pytest.raises(NonFiniteError, match=r"(?s)2 updates in a row .*\n  update 2 explained"):
        log.log_finished(keep=0)
    assert explained == [(2, 1.0)]
