"""Training on your own environment: a gymnasium one and a JAX one, named by a factory.

The task, CueRecall: the first observation shows a cue (left or right), the next `delay`
observations are blank, and then the agent must name the cue (action 0 or 1); reward 1 if it
does. A memory task of `delay` + 2 steps, written twice:

- `make` returns gymnasium environments (actor-learner loop):

      python -m gtrxl_jax.train --config experiments/configs/custom_env.py
      python -m gtrxl_jax.train env.factory=experiments.custom_env:make env.options.delay=8

- `make_jax` returns the same task as a `JaxEnv` (on-device loop, chosen by itself):

      python -m gtrxl_jax.train env.factory=experiments.custom_env:make_jax

A factory that takes `num_envs` makes host environments; one that does not makes a JaxEnv
(`gtrxl_jax.envs.factories`). Either gets the config's env.options as keyword arguments.
"""

import gymnasium
import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.envs import JaxEnv
from gtrxl_jax.envs.functional import Outcome
from gtrxl_jax.envs.spec import VECTOR, array_spec

# One observation: [cue is left, cue is right, blank]; the last one ends the episode.
_BLANK = np.array([0.0, 0.0, 1.0], np.float32)


class CueRecall(gymnasium.Env):
    """One CueRecall environment (gymnasium): remember a cue over `delay` blank steps."""

    observation_space = gymnasium.spaces.Box(0.0, 1.0, (3,), np.float32)
    action_space = gymnasium.spaces.Discrete(2)

    def __init__(self, delay: int = 4):
        """Args: delay: blank steps between the cue and the choice."""
        self._delay = delay
        self._cue = 0
        self._time = 0

    def reset(self, *, seed=None, options=None):
        """Start an episode: its cue, shown now."""
        super().reset(seed=seed)
        self._cue, self._time = int(self.np_random.integers(2)), 0
        return np.eye(3, dtype=np.float32)[self._cue], {}

    def step(self, action):
        """Blank steps, then the choice: reward 1 for the cue's action; success with it."""
        self._time += 1
        if self._time <= self._delay:
            return _BLANK, 0.0, False, False, {}
        success = int(action) == self._cue
        return _BLANK, float(success), True, False, {"success": success}


def make(num_envs: int, seed: int, training: bool, delay: int = 4) -> gymnasium.vector.VectorEnv:
    """A host factory: `num_envs` CueRecall environments (the same in training and eval)."""
    del seed, training  # the trainer seeds the first reset; the task has no training variant
    return gymnasium.vector.SyncVectorEnv([lambda: CueRecall(delay)] * num_envs)


class CueRecallJax(JaxEnv):
    """The same task as pure JAX functions (state: the cue and the time)."""

    def __init__(self, delay: int = 4):
        """Args: delay: blank steps between the cue and the choice."""
        super().__init__(task=f"CueRecallJax-{delay}", family="custom",
                         observation=array_spec((3,), np.float32), observation_kind=VECTOR,
                         num_actions=2, has_success=True)
        self._delay = delay

    def _reset(self, key):
        cue = jax.random.randint(key, (), 0, 2)
        return (cue, jnp.int32(0)), jax.nn.one_hot(cue, 3, dtype=jnp.float32)

    def _step(self, task_state, action):
        cue, time = task_state
        time = time + 1
        choice = time > self._delay
        success = choice & (action == cue)
        return (cue, time), Outcome(observation=jnp.asarray(_BLANK),
                                    reward=success.astype(jnp.float32), terminated=choice,
                                    truncated=jnp.asarray(False), success=success)


def make_jax(delay: int = 4) -> JaxEnv:
    """A JAX factory: one CueRecall environment as a JaxEnv (vmapped by the loop)."""
    return CueRecallJax(delay)
