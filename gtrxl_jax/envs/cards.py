"""Card games in JAX: a shuffled deck dealt one card at a time, with cheap resets.

POPGym's card tasks (Morad et al., 2023, "POPGym: Benchmarking Partially Observable
Reinforcement Learning", https://arxiv.org/abs/2303.01859) shuffle a deck of 52 *
num_decks cards at reset and read one attribute of each dealt card (its suit, colour or
rank). Under `vmap` a reset is computed on every step (see `gtrxl_jax.envs.functional`),
so shuffling there would cost O(cards log cards) a step. Here the deck is never built:
the next card's value v is drawn with probability remaining[v] / sum(remaining) from a
counter-based key (card t of an episode from `fold_in(episode_key, t)`), which gives
exactly the value sequence of a uniformly shuffled deck at O(values) a card. A game keeps
`remaining` (how many cards of each value are still in the deck) and whatever it must
recall, in one `CardState`.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from gtrxl_jax.envs.functional import JaxEnv
from gtrxl_jax.envs.spec import VECTOR, array_spec

DECK_SIZE = 52
NUM_SUITS = 4
NUM_VALUES = {"colors": 2, "suits": NUM_SUITS, "ranks": 13}  # values of each card attribute


@struct.dataclass
class CardState:
    """One card game's episode.

    Attributes:
      key: uint32 [2], the episode's key; card t comes from `fold_in(key, t)`.
      time: int32 [], steps taken in the episode; cards 0 .. time of each deck are dealt.
      remaining: int32 [D, V], cards of each value still in each of the game's D decks.
      memory: int32 [M], what the game must keep to score the agent (per game).
    """

    key: jax.Array
    time: jax.Array
    remaining: jax.Array
    memory: jax.Array


def deal(key: jax.Array, remaining: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Deal the next card of a shuffled deck.

    Args:
      key: uint32 [2], this card's key.
      remaining: int32 [V], cards of each value still in the deck (an empty deck deals
        value V-1 and stays empty: the caller ignores it).

    Returns:
      (value, remaining): int32 [] the card's value, int32 [V] without it.
    """
    total = jnp.sum(remaining)
    position = jax.random.randint(key, (), 0, jnp.maximum(total, 1))
    value = jnp.sum(jnp.cumsum(remaining) <= position)
    value = jnp.minimum(value, remaining.shape[0] - 1).astype(jnp.int32)
    return value, remaining.at[value].add(jnp.where(total > 0, -1, 0))


def score(correct: jax.Array, scale: float) -> jax.Array:
    """POPGym's reward for one answer: +scale if correct, else -scale (float32 [])."""
    return jnp.where(correct, scale, -scale).astype(jnp.float32)


def one_hot(value: jax.Array, num_values: int) -> jax.Array:
    """One-hot float32 [num_values] of an int []."""
    return jax.nn.one_hot(value, num_values, dtype=jnp.float32)


class CardGame(JaxEnv):
    """A POPGym-style card game: D decks of 52 * num_decks cards read as V values."""

    def __init__(
        self,
        task: str,
        num_decks: int,
        attribute: str,
        num_shuffled_decks: int,
        observation_size: int,
        num_actions: int,
    ):
        """Set up the decks and the spec shared by the card games.

        Args:
          task: the task name.
          num_decks: 52-card decks in each shuffled deck.
          attribute: what a card's value is: "colors", "suits" or "ranks".
          num_shuffled_decks: D, independently shuffled decks dealt together.
          observation_size: length of the float32 observation vector.
          num_actions: size of the Discrete action space.
        """
        super().__init__(
            task=task,
            family="popgym",
            observation=array_spec((observation_size,), np.float32),
            observation_kind=VECTOR,
            num_actions=num_actions,
            has_success=False,
        )
        self.num_cards = DECK_SIZE * num_decks
        self.num_values = NUM_VALUES[attribute]
        self._full = np.full(
            (num_shuffled_decks, self.num_values), self.num_cards // self.num_values, np.int32
        )

    def _deal(self, key: jax.Array, time: jax.Array, remaining: jax.Array):
        """Deal card `time` of each deck: (values int32 [D], remaining int32 [D, V])."""
        keys = jax.random.split(jax.random.fold_in(key, time), remaining.shape[0])
        return jax.vmap(deal)(keys, remaining)

    def _start(self, key: jax.Array) -> tuple[jax.Array, CardState]:
        """Deal an episode's first card of each deck.

        Returns:
          (values int32 [D], state at time 0 with memory = values; a game replaces it).
        """
        values, remaining = self._deal(key, jnp.int32(0), jnp.asarray(self._full))
        return values, CardState(key=key, time=jnp.int32(0), remaining=remaining, memory=values)

    def _count_dealt(self, remaining: jax.Array) -> jax.Array:
        """Cards of each value dealt so far from each deck, int32 [D, V]."""
        return jnp.asarray(self._full) - remaining
