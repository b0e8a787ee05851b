"""Evaluation: complete episodes on fresh environments (training=False), greedy or sampled.

Each of E parallel environments runs a fixed quota of episodes (the quotas sum to the
number asked for), so short episodes are not over-counted the way "the first N episodes to
finish" would count them.
"""

import logging
import math
from typing import Any

import jax
import numpy as np

from gtrxl_jax.agent import Agent, AgentInput
from gtrxl_jax.envs import make_env
from gtrxl_jax.train.actor import make_policy_step

logger = logging.getLogger(__name__)

MAX_PARALLEL_ENVS = 32


def evaluate_task(
    agent: Agent,
    params: Any,
    task: str,
    num_episodes: int,
    *,
    greedy: bool,
    seed: int,
    env_options: dict | None = None,
    max_steps: int = 100_000,
) -> dict[str, float]:
    """Run `num_episodes` complete episodes of one task.

    Args:
      agent: the agent.
      params: its parameters.
      task: the task name.
      num_episodes: how many episodes to average over.
      greedy: act with the most probable action (else sample from the policy).
      seed: seeds the environments and the sampling.
      env_options: extra make_env options.
      max_steps: give up after this many batched steps (a policy that never ends episodes).

    Returns:
      {"episode_return", "episode_length", "success" (NaN if the task has none),
      "episodes"} averaged over the completed episodes.
    """
    num_envs = min(num_episodes, MAX_PARALLEL_ENVS)
    quota = np.full(num_envs, num_episodes // num_envs)
    quota[: num_episodes % num_envs] += 1
    done = np.zeros(num_envs, np.int64)
    episodes = []
    policy_step = jax.jit(make_policy_step(agent, greedy=greedy))
    env = make_env(task, num_envs, seed=seed, training=False, **(env_options or {}))
    try:
        state = agent.initial_state(num_envs, cache=True)  # empty: its zero cache is valid
        key = jax.random.PRNGKey(seed)
        timestep = env.reset()
        prev_action = np.zeros(num_envs, np.int32)
        for _ in range(max_steps):
            inputs = AgentInput(observation=timestep.observation, first=timestep.first,
                                prev_action=prev_action, prev_reward=timestep.reward)
            actions, _, state, key = policy_step(params, inputs, state, key)
            prev_action = np.asarray(actions)
            timestep = env.step(prev_action)
            for episode in env.pop_episodes():
                if done[episode.env_id] < quota[episode.env_id]:
                    done[episode.env_id] += 1
                    episodes.append(episode)
            if (done >= quota).all():
                break
        else:
            logger.warning("Evaluation of %s stopped after %d steps with %d of %d episodes.",
                           task, max_steps, len(episodes), num_episodes)
    finally:
        env.close()
    successes = [e.success for e in episodes if e.success is not None]
    return {
        "episode_return": float(np.mean([e.episode_return for e in episodes]))
        if episodes else math.nan,
        "episode_length": float(np.mean([e.length for e in episodes])) if episodes else math.nan,
        "success": float(np.mean(successes)) if successes else math.nan,
        "episodes": len(episodes),
    }


def evaluate(
    agent: Agent,
    params: Any,
    tasks: tuple[str, ...],
    num_episodes: int,
    *,
    seed: int,
    env_options: dict | None = None,
) -> dict[str, dict]:
    """Greedy and sampled evaluation of every task.

    Returns:
      {"greedy": {...}, "sampled": {...}}, each the averages of `evaluate_task` (over all
      tasks' episodes) and, with several tasks, a "tasks" entry per task.
    """
    results = {}
    for mode in ("greedy", "sampled"):
        per_task = {
            task: evaluate_task(agent, params, task, num_episodes, greedy=mode == "greedy",
                                seed=seed + i, env_options=env_options)
            for i, task in enumerate(tasks)
        }
        if len(tasks) == 1:
            results[mode] = per_task[tasks[0]]
            continue
        results[mode] = {
            key: float(np.mean([r[key] for r in per_task.values()]))
            for key in ("episode_return", "episode_length", "success")
        }
        results[mode]["episodes"] = sum(r["episodes"] for r in per_task.values())
        results[mode]["tasks"] = per_task
    return results
