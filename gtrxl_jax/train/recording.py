"""Episodes played step by step with the acting policy, their inputs kept for replay.

    env = make_env(task, 1, seed=seed, training=False)   # or JaxEnvOnHost(jax_env, seed)
    episodes = record_episodes(agent, params, env, 3, greedy=True, seed=seed, max_steps=1000)
    episodes[0].inputs           # AgentInput [T, 1]: what the agent saw at its T decisions

The policy is the actors' and evaluation's jitted step (`acting.make_policy_step`), one
environment at a time, carrying the core state with its acting cache. An episode's inputs
are the steps it acted on, from its first step to the step before its last (the action
chosen on a last step is ignored), so unrolling the agent over them from an empty state
gives the outputs the steps gave (the memory contract): attention maps replay them.
"""

import dataclasses
from typing import Any

import jax
import numpy as np

from gtrxl_jax.agent import Agent, AgentInput
from gtrxl_jax.envs.functional import JaxEnv, batch_reset, batch_step, reset_keys
from gtrxl_jax.train.acting import make_policy_step


@dataclasses.dataclass(frozen=True)
class RecordedEpisode:
    """One episode as the agent played it.

    Attributes:
      inputs: AgentInput [T, 1], the agent's inputs at its T decisions (first[0] is True).
      actions: int32 [T], the actions it chose.
      last_observation: the observation of the episode's last step (batch axis of 1), or
        None if the recording stopped before the episode ended.
      episode_return: the sum of the rewards received after the first step.
    """

    inputs: AgentInput
    actions: np.ndarray
    last_observation: Any
    episode_return: float

    @property
    def complete(self) -> bool:
        """Whether the episode ended within the recording."""
        return self.last_observation is not None

    def observations(self) -> list[Any]:
        """Every observation of the episode, one environment's each (no batch axis)."""
        steps = [jax.tree.map(lambda x, t=t: x[t, 0], self.inputs.observation)
                 for t in range(len(self.actions))]
        if self.complete:
            steps.append(jax.tree.map(lambda x: x[0], self.last_observation))
        return steps


class JaxEnvOnHost:
    """One environment of a JAX task stepped from the host, like a `VectorEnv` of one.

    Its reset and step are the on-device loop's (`batch_reset`, `batch_step`), jitted;
    timesteps come back as numpy arrays with a batch axis of 1.
    """

    def __init__(self, env: JaxEnv, seed: int):
        self._env, self._seed = env, seed
        self._step = jax.jit(lambda states, actions: batch_step(env, states, actions))
        self._states = None

    def reset(self):
        """Start the environment's first episode."""
        self._states, timestep = batch_reset(self._env, reset_keys(self._seed, 1))
        return jax.device_get(timestep)

    def step(self, actions: np.ndarray):
        """Act: actions int32 [1]."""
        self._states, timestep = self._step(self._states, actions)
        return jax.device_get(timestep)

    def close(self) -> None:
        """Nothing to release."""


def record_episodes(agent: Agent, params: Any, env, num_episodes: int, *, greedy: bool,
                    seed: int, max_steps: int) -> list[RecordedEpisode]:
    """Play episodes in one environment with the acting policy, keeping every input.

    Args:
      agent: the agent.
      params: its parameters.
      env: one environment with `reset()` and `step(actions [1])`: a host task's
        `make_env(task, 1, training=False)` or a `JaxEnvOnHost`.
      num_episodes: episodes to record.
      greedy: act with the most probable action (else sample from the policy).
      seed: seeds the sampling.
      max_steps: stop after this many steps in all; the episode in progress is then kept,
        incomplete.

    Returns:
      The episodes, in the order played (fewer than asked for if `max_steps` ran out).
    """
    policy_step = jax.jit(make_policy_step(agent, greedy=greedy))
    state = agent.initial_state(1, cache=True)  # empty: its zero cache is valid
    key = jax.random.PRNGKey(seed)
    timestep = env.reset()
    prev_action = np.zeros(1, np.int32)
    episodes, steps, episode_return = [], [], 0.0
    for _ in range(max_steps):
        inputs = AgentInput(observation=timestep.observation, first=np.asarray(timestep.first),
                            prev_action=prev_action,
                            prev_reward=np.asarray(timestep.reward, np.float32))
        if not timestep.first[0]:
            episode_return += float(timestep.reward[0])
        actions, _, state, key = policy_step(params, inputs, state, key)
        prev_action = np.asarray(actions)
        if timestep.last[0]:
            episodes.append(_episode(steps, timestep.observation, episode_return))
            if len(episodes) == num_episodes:
                return episodes
            steps, episode_return = [], 0.0
        else:
            steps.append((inputs, prev_action))
        timestep = env.step(prev_action)
    if steps:
        episodes.append(_episode(steps, None, episode_return))
    return episodes


def _episode(steps: list, last_observation: Any, episode_return: float) -> RecordedEpisode:
    """A RecordedEpisode of (inputs [1], action [1]) pairs, stacked along time."""
    inputs = jax.tree.map(lambda *xs: np.stack([np.asarray(x) for x in xs]),
                          *[inputs for inputs, _ in steps])
    actions = np.concatenate([action for _, action in steps]).astype(np.int32)
    return RecordedEpisode(inputs=inputs, actions=actions, last_observation=last_observation,
                           episode_return=episode_return)
