"""POPGym's memory card games in JAX: RepeatFirst, RepeatPrevious, Autoencode, CountRecall.

After POPGym (Morad et al., 2023, https://arxiv.org/abs/2303.01859; the definitions in
proroklab/popgym, popgym/envs/*.py), written here for JAX (popjym is not on the package
index). Each game comes at POPGym's three levels, named as POPGym's classes
("RepeatPreviousEasy", "CountRecallHard"). With n = 52 * num_decks cards:

- RepeatFirst (num_decks 1 / 8 / 16): see a card's suit each step; answer the suit of the
  episode's first card. n-1 steps, each +-1/(n-1). An agent that sees its previous action
  (`agent.use_prev_action_reward`, on by default, as POPGym's baselines' PreviousAction
  wrapper) needs no memory: answer the card on screen at the first step, then repeat.
  That option also feeds the previous reward, which POPGym's baselines do not see: in
  RepeatPrevious and CountRecall it says whether the last answer was right.
- RepeatPrevious (num_decks, k: 1, 4 / 2, 32 / 3, 64): on step t answer the suit of card
  t-k (the card seen k-1 steps before the one on screen); steps t >= k score +-1/(n-k).
  n-1 steps.
- Autoencode (num_decks 1 / 2 / 3): watch n suits, then play them back in reverse order,
  one a step. The observation is (mode, suit): mode 1 = watch, 0 = play (set on the last
  card shown already); in play the suit shown is 0. 2n-1 steps; the n answers score +-1/n.
- CountRecall (num_decks, attribute: 1, colors / 2, suits / 4, ranks): each step deals a
  value card and a query card from two decks; answer how many value cards of the previous
  step's query value had been dealt up to that step (the value card shown with the query
  included, the card dealt now not). n-1 steps, each +-1/(n-1). The
  action space is POPGym's Discrete(n / V); a count of n / V (every card of the value
  dealt) cannot be answered, as in POPGym: about 1, 3 and 11 such steps an episode at
  Easy, Medium and Hard (simulated), so the best return is ~0.96, ~0.94 and ~0.89.

An episode's return lies in [-1, 1] (1 = every answer right, CountRecall's cap above
aside); there is no success flag.
Observations are one-hot float32 vectors (VECTOR): suit [4] for the repeat games,
mode [2] ++ suit [4] for Autoencode, value [V] ++ query [V] for CountRecall. Episodes end
by termination (discount 0), as in POPGym's current games (its early RepeatFirst and
RepeatPrevious truncated instead).
"""

import jax
import jax.numpy as jnp

from gtrxl_jax.envs.cards import (
    DECK_SIZE,
    NUM_SUITS,
    NUM_VALUES,
    CardGame,
    CardState,
    one_hot,
    score,
)
from gtrxl_jax.envs.functional import Outcome

_PLAY, _WATCH = 0, 1  # Autoencode's modes, as POPGym numbers them
LEVELS = ("Easy", "Medium", "Hard")
_SUIT_GAME = dict(attribute="suits", num_shuffled_decks=1, num_actions=NUM_SUITS)


def _outcome(observation: jax.Array, reward: jax.Array, terminated: jax.Array) -> Outcome:
    return Outcome(
        observation=observation,
        reward=reward,
        terminated=terminated,
        truncated=jnp.asarray(False),
        success=jnp.asarray(False),
    )


class RepeatFirst(CardGame):
    """Answer the suit of the episode's first card, every step. memory: [first suit]."""

    def __init__(self, task: str, num_decks: int):
        super().__init__(task, num_decks, observation_size=NUM_SUITS, **_SUIT_GAME)

    def _reset(self, key: jax.Array) -> tuple[CardState, jax.Array]:
        suits, state = self._start(key)  # memory: the first suit
        return state, one_hot(suits[0], NUM_SUITS)

    def _step(self, state: CardState, action: jax.Array) -> tuple[CardState, Outcome]:
        time = state.time + 1
        suits, remaining = self._deal(state.key, time, state.remaining)
        reward = score(action == state.memory[0], 1.0 / (self.num_cards - 1))
        state = state.replace(time=time, remaining=remaining)
        return state, _outcome(one_hot(suits[0], NUM_SUITS), reward, time == self.num_cards - 1)


class RepeatPrevious(CardGame):
    """Answer the suit of the card k steps back. memory [k]: card j's suit at slot j % k."""

    def __init__(self, task: str, num_decks: int, k: int):
        super().__init__(task, num_decks, observation_size=NUM_SUITS, **_SUIT_GAME)
        if not 1 <= k < self.num_cards:
            raise ValueError(f"k must lie in [1, {self.num_cards}), got {k}")
        self.k = k

    def _reset(self, key: jax.Array) -> tuple[CardState, jax.Array]:
        suits, state = self._start(key)
        state = state.replace(memory=jnp.zeros(self.k, jnp.int32).at[0].set(suits[0]))
        return state, one_hot(suits[0], NUM_SUITS)

    def _step(self, state: CardState, action: jax.Array) -> tuple[CardState, Outcome]:
        time = state.time + 1
        slot = time % self.k  # holds card time-k until card time replaces it
        scale = 1.0 / (self.num_cards - self.k)
        reward = jnp.where(time >= self.k, score(action == state.memory[slot], scale), 0.0)
        suits, remaining = self._deal(state.key, time, state.remaining)
        memory = state.memory.at[slot].set(suits[0])
        state = state.replace(time=time, remaining=remaining, memory=memory)
        return state, _outcome(one_hot(suits[0], NUM_SUITS), reward, time == self.num_cards - 1)


class Autoencode(CardGame):
    """Watch n suits, then play them back in reverse. memory [n]: the suits in order."""

    def __init__(self, task: str, num_decks: int):
        super().__init__(task, num_decks, observation_size=2 + NUM_SUITS, **_SUIT_GAME)

    def _reset(self, key: jax.Array) -> tuple[CardState, jax.Array]:
        suits, state = self._start(key)
        state = state.replace(memory=jnp.zeros(self.num_cards, jnp.int32).at[0].set(suits[0]))
        return state, self._observe(jnp.int32(_WATCH), suits[0])

    def _step(self, state: CardState, action: jax.Array) -> tuple[CardState, Outcome]:
        n = self.num_cards
        time = state.time + 1
        watching = time < n  # steps 1 .. n-1 deal cards 1 .. n-1
        suits, remaining = self._deal(state.key, time, state.remaining)
        memory = state.memory.at[time].set(suits[0], mode="drop")  # dropped once playing
        # Step n + j plays back card n-1-j.
        target = state.memory[jnp.clip(2 * n - 1 - time, 0, n - 1)]
        reward = jnp.where(watching, 0.0, score(action == target, 1.0 / n))
        mode = jnp.where(time >= n - 1, _PLAY, _WATCH)
        observation = self._observe(mode, jnp.where(watching, suits[0], 0))
        state = state.replace(time=time, remaining=remaining, memory=memory)
        return state, _outcome(observation, reward, time == 2 * n - 1)

    def _observe(self, mode: jax.Array, suit: jax.Array) -> jax.Array:
        """Encode (mode, suit) as one-hot float32 [2 + 4]."""
        return jnp.concatenate([one_hot(mode, 2), one_hot(suit, NUM_SUITS)])


class CountRecall(CardGame):
    """Answer how many cards of the previous query's value were dealt. memory: [query].

    Two decks: remaining[0] is the value deck, remaining[1] the query deck.
    """

    def __init__(self, task: str, num_decks: int, attribute: str):
        num_values = NUM_VALUES[attribute]
        num_counts = DECK_SIZE * num_decks // num_values  # POPGym's action space
        super().__init__(
            task,
            num_decks,
            attribute,
            num_shuffled_decks=2,
            observation_size=2 * num_values,
            num_actions=num_counts,
        )

    def _reset(self, key: jax.Array) -> tuple[CardState, jax.Array]:
        cards, state = self._start(key)
        return state.replace(memory=cards[1:]), self._observe(cards)

    def _step(self, state: CardState, action: jax.Array) -> tuple[CardState, Outcome]:
        time = state.time + 1
        count = self._count_dealt(state.remaining)[0, state.memory[0]]
        cards, remaining = self._deal(state.key, time, state.remaining)
        reward = score(action == count, 1.0 / (self.num_cards - 1))
        state = state.replace(time=time, remaining=remaining, memory=cards[1:])
        return state, _outcome(self._observe(cards), reward, time == self.num_cards - 1)

    def _observe(self, cards: jax.Array) -> jax.Array:
        """Encode the (value, query) cards [2] as one-hot float32 [2 * V]."""
        return one_hot(cards, self.num_values).reshape(-1)


# POPGym's levels: task name -> (game, its arguments after the task name).
POPGYM_TASKS = {
    "RepeatFirstEasy": (RepeatFirst, (1,)),
    "RepeatFirstMedium": (RepeatFirst, (8,)),
    "RepeatFirstHard": (RepeatFirst, (16,)),
    "RepeatPreviousEasy": (RepeatPrevious, (1, 4)),
    "RepeatPreviousMedium": (RepeatPrevious, (2, 32)),
    "RepeatPreviousHard": (RepeatPrevious, (3, 64)),
    "AutoencodeEasy": (Autoencode, (1,)),
    "AutoencodeMedium": (Autoencode, (2,)),
    "AutoencodeHard": (Autoencode, (3,)),
    "CountRecallEasy": (CountRecall, (1, "colors")),
    "CountRecallMedium": (CountRecall, (2, "suits")),
    "CountRecallHard": (CountRecall, (4, "ranks")),
}


def make_popgym_task(task: str) -> CardGame:
    """Build one of `POPGYM_TASKS` by name (KeyError for other names)."""
    game, arguments = POPGYM_TASKS[task]
    return game(task, *arguments)
