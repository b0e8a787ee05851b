"""POPGym's card games: deck statistics, timing, and oracles that score a return of 1."""

import numpy as np
import pytest

from gtrxl_jax.envs.cards import DECK_SIZE
from tests.envs.jax_helpers import episode_returns, jax_env, play, random_rollout


def suits(timestep):
    """The suit shown to each env [N] (the last 4 entries of the observation are one-hot)."""
    return timestep.observation[:, -4:].argmax(axis=1)


class History:
    """What an oracle has seen since each env's episode began: lists of ints per env."""

    def __init__(self, num_envs):
        self.seen = [[] for _ in range(num_envs)]

    def add(self, timestep, values):
        for env_id, value in enumerate(values):
            if timestep.first[env_id]:
                self.seen[env_id] = []
            self.seen[env_id].append(int(value))


@pytest.mark.parametrize("task, num_decks", [("RepeatFirstEasy", 1), ("RepeatFirstMedium", 8)])
def test_the_cards_of_an_episode_are_a_shuffled_deck(task, num_decks):
    num_cards = DECK_SIZE * num_decks
    _, _, ts = random_rollout(task, 4, num_cards)  # one episode: cards 0 .. n-1, then a reset
    shown = ts.observation[:num_cards].argmax(axis=2)  # [n, N]
    for env_id in range(4):
        np.testing.assert_array_equal(np.bincount(shown[:, env_id], minlength=4),
                                      [13 * num_decks] * 4)
    assert ts.last[num_cards - 1].all() and ts.first[num_cards].all()
    assert len({tuple(column) for column in shown.T}) == 4  # different shuffles


def test_count_recall_deals_two_independent_decks():
    _, _, ts = random_rollout("CountRecallHard", 2, 4 * DECK_SIZE)
    values, queries = ts.observation[: 4 * DECK_SIZE].reshape(-1, 2, 2, 13).argmax(axis=3).T
    for deck in (values, queries):
        for env_deck in deck:
            np.testing.assert_array_equal(np.bincount(env_deck, minlength=13), [16] * 13)
    assert not np.array_equal(values, queries)


@pytest.mark.parametrize("task, k", [
    ("RepeatFirstEasy", None), ("RepeatFirstMedium", None), ("RepeatFirstHard", None),
    ("RepeatPreviousEasy", 4), ("RepeatPreviousMedium", 32), ("RepeatPreviousHard", 64)])
def test_an_oracle_that_remembers_scores_one(task, k):
    num_envs, episode = 3, jax_env(task).num_cards - 1
    history = History(num_envs)

    def oracle(timestep):
        history.add(timestep, suits(timestep))
        if k is None:
            return [seen[0] for seen in history.seen]
        return [seen[-k] if len(seen) >= k else 0 for seen in history.seen]

    ts = play(task, oracle, num_envs, 2 * (episode + 1))
    np.testing.assert_allclose(episode_returns(ts), 1.0, atol=1e-5)
    assert ts.last.sum() == 2 * num_envs and (ts.discount[ts.last] == 0).all()


def test_repeat_first_needs_no_memory_given_the_previous_action():
    """The shortcut the docstring names: answer the card on screen at the first step, then
    repeat the previous action; nothing else is remembered."""
    num_envs, episode = 3, jax_env("RepeatFirstEasy").num_cards - 1
    previous = np.zeros(num_envs, np.int32)

    def copy_previous(timestep):
        previous[:] = np.where(timestep.first, suits(timestep), previous)
        return previous.copy()

    ts = play("RepeatFirstEasy", copy_previous, num_envs, 2 * (episode + 1))
    np.testing.assert_allclose(episode_returns(ts), 1.0, atol=1e-5)


@pytest.mark.parametrize("task", ["AutoencodeEasy", "AutoencodeMedium", "AutoencodeHard"])
def test_autoencode_oracle_plays_the_cards_back_and_scores_one(task):
    num_envs, n = 2, jax_env(task).num_cards
    history = History(num_envs)
    modes = []

    def oracle(timestep):
        modes.append(timestep.observation[:, :2].argmax(axis=1))
        history.add(timestep, suits(timestep))
        # Step n + j plays back card n-1-j; the first n observations show cards 0 .. n-1.
        return [seen[2 * n - 1 - len(seen)] if len(seen) >= n else 0 for seen in history.seen]

    ts = play(task, oracle, num_envs, 2 * n)
    np.testing.assert_allclose(episode_returns(ts), 1.0, atol=1e-5)
    assert ts.last[2 * n - 1].all()
    modes = np.array(modes)
    assert (modes[: n - 1] == 1).all() and (modes[n - 1 : 2 * n] == 0).all()  # watch, play
    assert (ts.reward[1:n] == 0).all() and (np.abs(ts.reward[n : 2 * n]) == 1 / n).all()


@pytest.mark.parametrize("task, num_actions", [
    ("CountRecallEasy", 26), ("CountRecallMedium", 26), ("CountRecallHard", 16)])
def test_count_recall_oracle_is_right_whenever_the_count_can_be_answered(task, num_actions):
    num_envs, env = 4, jax_env(task)
    n, num_values = env.num_cards, env.num_values
    counts, answers = np.zeros((num_envs, num_values), int), []

    def oracle(timestep):
        value, query = timestep.observation.reshape(num_envs, 2, num_values).argmax(axis=2).T
        counts[timestep.first] = 0
        counts[np.arange(num_envs), value] += 1
        answers.append(counts[np.arange(num_envs), query].copy())
        return np.minimum(answers[-1], env.num_actions - 1)

    ts = play(task, oracle, num_envs, n)
    answerable = np.array(answers[: n - 1]) < env.num_actions  # the answer given at steps 1..n-1
    np.testing.assert_array_equal(ts.reward[1:n] > 0, answerable)
    assert (np.abs(ts.reward[1:n]) == np.float32(1 / (n - 1))).all()
    assert env.num_actions == num_actions and ts.last[n - 1].all()


@pytest.mark.parametrize("task, chance", [("RepeatPreviousHard", -0.5), ("AutoencodeMedium", -0.5),
                                          ("CountRecallMedium", -24 / 26)])
def test_random_answers_score_chance(task, chance):
    _, _, ts = random_rollout(task, 16, 1700)
    np.testing.assert_allclose(episode_returns(ts).mean(), chance, atol=0.05)
