"""Evaluation: complete episodes on fresh environments (training=False), greedy or sampled.

Host tasks (`evaluate`): each of E parallel environments runs a fixed quota of episodes (the
quotas sum to the number asked for), so short episodes are not over-counted the way "the
first N episodes to finish" would count them. JAX tasks (`evaluate_on_device`): one
environment per episode, each playing its first episode, in one compiled loop.

Periodic evaluation (run.eval_interval_updates) calls these every few updates with the
same agent, so the jitted functions are cached per agent and compile once.
"""

import functools
import logging
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.agent import Agent, AgentInput
from gtrxl_jax.config import RunConfig
from gtrxl_jax.envs import make_env, summarize
from gtrxl_jax.envs.episodes import Episode, EpisodeTotals
from gtrxl_jax.envs.functional import JaxEnv, play_first_episodes, reset_keys
from gtrxl_jax.train.acting import act_on_timestep, make_policy_step

logger = logging.getLogger(__name__)

_EVAL_SEED_OFFSET = 1_000_003  # evaluation environments never replay training's seeds


def evaluation_seed(run_seed: int) -> int:
    """The seed of a run's evaluation environments, in [0, 2**31) as every env takes."""
    return (run_seed + _EVAL_SEED_OFFSET) % 2**31

MAX_PARALLEL_ENVS = 32
MODES = ("greedy", "sampled")


def play_task(
    agent: Agent,
    params: Any,
    task: str,
    num_episodes: int,
    *,
    greedy: bool,
    seed: int,
    env_options: dict | None = None,
    max_steps: int = 100_000,
) -> list[Episode]:
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
      The completed episodes (fewer than asked for if max_steps ran out).
    """
    num_envs = min(num_episodes, MAX_PARALLEL_ENVS)
    quota = np.full(num_envs, num_episodes // num_envs)
    quota[: num_episodes % num_envs] += 1
    done = np.zeros(num_envs, np.int64)
    episodes = []
    policy_step = _jitted_policy_step(_ByIdentity(agent), greedy)
    env = make_env(task, num_envs, seed=seed, training=False, **(env_options or {}))
    try:
        state = agent.initial_state(num_envs, cache=True)  # empty: its zero cache is valid
        key = jax.random.PRNGKey(seed)
        timestep = env.reset()
        prev_action = np.zeros(num_envs, np.int32)
        for _ in range(max_steps):
            inputs = AgentInput.at(timestep, prev_action)
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
    return episodes


def evaluate(
    agent: Agent,
    params: Any,
    tasks: tuple[str, ...],
    num_episodes: int,
    *,
    seed: int,
    env_options: dict | None = None,
    modes: tuple[str, ...] = MODES,
) -> dict[str, dict]:
    """Greedy and sampled evaluation of every task.

    Returns:
      {"greedy": {...}, "sampled": {...}} (the `modes` asked for), each `summarize` of the
      episodes `play_task` completed, over all tasks' episodes (a task cut short weighs by
      the episodes it finished; success over those that report it) and, with several
      tasks, a "tasks" entry per task.
    """
    results = {}
    for mode in modes:
        per_task = {
            task: play_task(agent, params, task, num_episodes, greedy=mode == "greedy",
                            seed=(seed + i) % 2**31, env_options=env_options)
            for i, task in enumerate(tasks)
        }
        results[mode] = summarize([e for episodes in per_task.values() for e in episodes])
        if len(tasks) > 1:
            results[mode]["tasks"] = {task: summarize(episodes)
                                      for task, episodes in per_task.items()}
    return results


def evaluate_on_device(agent: Agent, params: Any, env: JaxEnv, num_episodes: int, *,
                       seed: int, max_steps: int = 100_000,
                       modes: tuple[str, ...] = MODES) -> dict[str, dict]:
    """Greedy and sampled evaluation of a JAX task: {"greedy": {...}, "sampled": {...}}."""
    return {mode: evaluate_jax_task(agent, params, env, num_episodes, greedy=mode == "greedy",
                                    seed=seed, max_steps=max_steps)
            for mode in modes}


def periodic_eval_due(run: RunConfig, update: int) -> bool:
    """Whether the training loops evaluate after this update (run.eval_interval_updates)."""
    return run.eval_interval_updates is not None and update % run.eval_interval_updates == 0


def eval_metrics(results: dict[str, dict]) -> dict[str, float]:
    """Evaluation results as flat metrics for a training record.

    Args:
      results: {"greedy": {...}, "sampled": {...}} from `evaluate` or `evaluate_on_device`.

    Returns:
      {"eval_greedy_episode_return", "eval_greedy_episode_length", "eval_greedy_success"
      (NaN where the task has none), "eval_greedy_episodes", the same for "sampled"}; with
      several tasks also "<key>/<task>" entries, as the training metrics name them.
    """
    metrics = {}
    for mode, values in results.items():
        for task, per_task in [("", values), *values.get("tasks", {}).items()]:
            suffix = f"/{task}" if task else ""
            for key, value in per_task.items():
                if key != "tasks":
                    metrics[f"eval_{mode}_{key}{suffix}"] = float(value)
    return metrics


def evaluate_jax_task(agent: Agent, params: Any, env: JaxEnv, num_episodes: int, *,
                      greedy: bool, seed: int, max_steps: int = 100_000) -> dict[str, float]:
    """Run `num_episodes` environments of a JAX task until each has finished its first episode.

    Args:
      agent: the agent.
      params: its parameters.
      env: the task's environment.
      num_episodes: how many episodes (one environment each).
      greedy: act with the most probable action (else sample from the policy).
      seed: seeds the environments and the sampling.
      max_steps: give up after this many steps (a policy that never ends episodes).

    Returns:
      {"episode_return", "episode_length", "success" (NaN if the task has none),
      "episodes"} averaged over the episodes that finished.
    """
    totals = jax.device_get(_first_episode_sums(_ByIdentity(agent), env, num_episodes, greedy,
                                                 max_steps)(
        params, reset_keys(seed, num_episodes),
        jax.random.split(jax.random.PRNGKey(seed), num_episodes)))
    finished = int(totals["episodes"])
    if finished < num_episodes:
        logger.warning("Evaluation of %s stopped after %d steps with %d of %d episodes.",
                       env.task, max_steps, finished, num_episodes)
    return EpisodeTotals(
        episodes=float(totals["episodes"]), return_sum=float(totals["return_sum"]),
        length_sum=float(totals["length_sum"]), success_sum=float(totals["success_sum"]),
        success_count=float(totals["episodes"]) if env.has_success else 0.0).summary()


class _ByIdentity:
    """An agent as a cache key, by identity.

    An Agent with a dict observation spec (MiniGrid) has no hash. The key holds the agent,
    so its id is not reused while it is cached.
    """

    def __init__(self, agent: Agent):
        self.agent = agent

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _ByIdentity) and other.agent is self.agent

    def __hash__(self) -> int:
        return id(self.agent)


@functools.lru_cache(maxsize=8)
def _jitted_policy_step(key: _ByIdentity, greedy: bool):
    """The jitted policy step of an agent, compiled once however often it evaluates."""
    return jax.jit(make_policy_step(key.agent, greedy=greedy))


@functools.lru_cache(maxsize=8)
def _first_episode_sums(key: _ByIdentity, env: JaxEnv, num_envs: int, greedy: bool,
                         max_steps: int):
    """A jitted function: (params, reset keys [N, 2], sampling keys [N, 2]) -> episode sums.

    Cached per (agent, environment, ...), so that repeated evaluation compiles once.
    """
    agent = key.agent

    def play(params, env_keys, sample_keys):
        def policy(policy_state, timestep):
            core_state, prev_action, keys = policy_state
            actions, core_state, keys = act_on_timestep(agent, params, timestep, prev_action,
                                                        core_state, keys, greedy)
            return actions, (core_state, actions, keys)

        core_state = agent.refresh_state(params, agent.initial_state(num_envs, cache=True))
        start = (core_state, jnp.zeros(num_envs, jnp.int32), sample_keys)
        tally = play_first_episodes(env, env_keys, policy, start, max_steps)
        done_f = tally.done.astype(jnp.float32)
        return {"episodes": done_f.sum(), "return_sum": (done_f * tally.returns).sum(),
                "length_sum": (done_f * tally.lengths).sum(),
                "success_sum": (done_f * tally.success).sum()}

    return jax.jit(play)
