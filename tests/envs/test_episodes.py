import math

import numpy as np

from gtrxl_jax.envs.episodes import Episode, EpisodeTotals, EpisodeTracker, summarize


def test_tracker_sums_rewards_counts_non_first_steps_and_clears_on_pop():
    tracker = EpisodeTracker(num_envs=3)
    ids = np.array([0, 1, 2])
    tracker.update(ids, np.zeros(3), np.ones(3, bool), np.zeros(3, bool))
    tracker.update(ids, np.array([1.0, 2.0, 3.0]), np.zeros(3, bool), np.zeros(3, bool))
    tracker.update(
        np.array([0, 2]),
        np.array([10.0, 0.5]),
        np.zeros(2, bool),
        np.array([True, False]),
        success=np.array([True, False]),
    )
    assert tracker.pop() == [Episode(env_id=0, episode_return=11.0, length=2, success=True)]
    assert tracker.pop() == []
    tracker.update(np.array([2]), np.array([1.0]), np.zeros(1, bool), np.ones(1, bool))
    assert tracker.pop() == [Episode(env_id=2, episode_return=4.5, length=3, success=None)]


def test_tracker_keeps_accumulating_across_first_steps_until_the_episode_is_over():
    # Atari with episodic life: a lost life makes a first step but not a new game.
    tracker = EpisodeTracker(num_envs=1)
    ids = np.array([0])
    for reward, first, over in [
        (0, True, False),
        (5, False, False),
        (0, True, False),
        (7, False, True),
    ]:
        tracker.update(ids, np.array([reward], float), np.array([first]), np.array([over]))
    (episode,) = tracker.pop()
    assert episode.episode_return == 12.0 and episode.length == 2


def test_restart_forgets_episodes_in_progress():
    tracker = EpisodeTracker(num_envs=1)
    tracker.update(np.array([0]), np.array([3.0]), np.array([False]), np.array([False]))
    tracker.restart()
    tracker.update(np.array([0]), np.array([1.0]), np.array([False]), np.array([True]))
    assert tracker.pop()[0].episode_return == 1.0


def test_summarize():
    episodes = [Episode(0, 1.0, 4, True), Episode(1, 3.0, 6, False), Episode(0, 2.0, 5, None)]
    assert summarize(episodes) == {"episodes": 3.0, "episode_return": 2.0, "episode_length": 5.0,
                                   "success": 0.5}
    empty = summarize([])
    assert empty["episodes"] == 0.0 and math.isnan(empty["episode_return"])
    assert math.isnan(empty["success"])


def test_totals_add_up_to_the_summary_of_all_episodes():
    first = [Episode(0, 1.0, 4, True)]
    second = [Episode(1, 3.0, 6, False), Episode(0, 2.0, 5, None)]
    assert (EpisodeTotals.of(first) + EpisodeTotals.of(second)).summary() == summarize(
        first + second)
