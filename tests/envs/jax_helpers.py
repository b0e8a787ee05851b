"""Drive JAX environments in tests: jitted random rollouts and host-side policies."""

import functools

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.envs import batch_reset, batch_step, make_jax_env, reset_keys


@functools.cache
def jax_env(task: str):
    """One environment per task name for the whole test session (compiles are cached by it)."""
    return make_jax_env(task)


@functools.cache
def _random_run(task: str, num_steps: int):
    env = jax_env(task)

    @jax.jit
    def run(states, key):
        def step(states, t):
            shape = (jax.tree.leaves(states)[0].shape[0],)
            actions = jax.random.randint(jax.random.fold_in(key, t), shape, 0, env.num_actions)
            states, timestep = batch_step(env, states, actions)
            return states, timestep

        return jax.lax.scan(step, states, jnp.arange(num_steps))

    return run


@functools.cache
def _reset(task: str):
    return jax.jit(functools.partial(batch_reset, jax_env(task)))


@functools.cache
def _step(task: str):
    return jax.jit(functools.partial(batch_step, jax_env(task)))


def reset(task: str, seed: int, num_envs: int):
    """Reset N environments of a task: (states, timestep), leaves [N, ...]."""
    return _reset(task)(reset_keys(seed, num_envs))


def run_random(task: str, states, num_steps: int, seed: int = 0):
    """T steps from some states under uniform random actions (one jitted scan).

    Returns:
      (final states, timesteps), timesteps' leaves [T, N, ...].
    """
    return _random_run(task, num_steps)(states, jax.random.PRNGKey(seed))


def random_rollout(task: str, num_envs: int, num_steps: int, seed: int = 0):
    """Reset, then T steps under uniform random actions.

    Returns:
      (initial states, final states, timesteps): timesteps as numpy, leaves [T + 1, N, ...]
      (row 0 is the reset's).
    """
    states, first = reset(task, seed, num_envs)
    final, timesteps = run_random(task, states, num_steps, seed + 1)
    stacked = jax.tree.map(lambda a, b: np.concatenate([a[None], b]), first, timesteps)
    return states, final, stacked


def play(task: str, policy, num_envs: int, num_steps: int, seed: int = 0):
    """Step N environments with a host-side policy(timestep) -> actions [N].

    Returns:
      Timesteps as numpy, leaves [T + 1, N, ...].
    """
    states, timestep = reset(task, seed, num_envs)
    timesteps = [jax.tree.map(np.asarray, timestep)]
    for _ in range(num_steps):
        actions = jnp.asarray(policy(timesteps[-1]), jnp.int32)
        states, timestep = _step(task)(states, actions)
        timesteps.append(jax.tree.map(np.asarray, timestep))
    return jax.tree.map(lambda *rows: np.stack(rows), *timesteps)


def episode_returns(timesteps) -> np.ndarray:
    """Returns of the episodes completed in timesteps [T, N] (rewards summed to each last)."""
    returns, running = [], np.zeros(timesteps.reward.shape[1])
    for reward, last in zip(timesteps.reward, timesteps.last, strict=True):
        running += reward
        returns.extend(running[last])
        running[last] = 0.0
    return np.array(returns)
