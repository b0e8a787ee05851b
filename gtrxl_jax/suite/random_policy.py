"""Measure a uniformly random policy's score on tasks: the "random" end of normalised scores.

    python -m gtrxl_jax.suite.random_policy MiniGrid-MemoryS7-v0 MazeMemory-v0 \
        --episodes 200 --num-envs 8 --out random_scores.jsonl
    python -m gtrxl_jax.suite.random_policy MiniGrid-MemoryS9 RepeatFirstEasy --jax \
        --episodes 1000

Host tasks (`make_env`): every environment contributes the same number of episodes (its
first ones), so short episodes are not over-represented. Evaluation settings
(`training=False`): unclipped Atari rewards, whole games. JAX tasks (`--jax`,
`make_jax_env`): one environment per episode, each playing its first episode, stepped in
one jitted loop.
"""

import json
import logging
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.argtypes import Parser, positive_int
from gtrxl_jax.envs import make_env, make_jax_env
from gtrxl_jax.envs.functional import play_first_episodes, reset_keys

logger = logging.getLogger(__name__)


def measure_random(
    task: str, episodes: int, num_envs: int = 8, seed: int = 0, max_steps: int = 10_000_000
) -> dict:
    """Run uniform random actions until every environment has finished its share of episodes.

    Args:
      task: a task name for `make_env`.
      episodes: total episodes E; each of the N environments plays ceil(E / N).
      num_envs: N, environments stepped together.
      seed: seeds the environments and the actions.
      max_steps: stop after this many batched steps even if episodes are missing.

    Returns:
      {"task", "episodes", "episode_return" (mean), "return_std", "return_sem", "success"
      (rate, or None), "episode_length" (mean), "env_steps", "steps_per_s", "seed"}.
    """
    per_env = math.ceil(episodes / num_envs)
    rng = np.random.default_rng(seed)
    done: dict[int, list] = {i: [] for i in range(num_envs)}
    steps = 0
    start = time.perf_counter()
    with make_env(task, num_envs=num_envs, seed=seed, training=False) as env:
        env.reset()
        while min(len(v) for v in done.values()) < per_env and steps < max_steps:
            env.step(rng.integers(0, env.spec.num_actions, num_envs, dtype=np.int32))
            steps += 1
            for episode in env.pop_episodes():
                done[episode.env_id].append(episode)
    seconds = time.perf_counter() - start
    kept = [e for v in done.values() for e in v[:per_env]]
    returns = np.array([e.episode_return for e in kept])
    successes = [e.success for e in kept if e.success is not None]
    return {
        "task": task,
        "episodes": len(kept),
        "episode_return": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_sem": float(returns.std() / math.sqrt(len(returns))),
        "success": float(np.mean(successes)) if successes else None,
        "episode_length": float(np.mean([e.length for e in kept])),
        "env_steps": steps * num_envs,
        "steps_per_s": steps * num_envs / seconds,
        "seed": seed,
    }


def measure_random_jax(task: str, episodes: int, seed: int = 0, max_steps: int = 100_000) -> dict:
    """Run uniform random actions in `episodes` environments of a JAX task, one episode each.

    Args:
      task: a task name for `make_jax_env`.
      episodes: E, environments stepped together; each plays its first episode.
      seed: seeds the environments and the actions.
      max_steps: stop after this many batched steps even if episodes are missing.

    Returns:
      The same keys as `measure_random` (env_steps counts every environment's steps until
      the last episode ended).
    """
    env = make_jax_env(task)

    def policy(key, timestep):
        key, draw = jax.random.split(key)
        return jax.random.randint(draw, (episodes,), 0, env.num_actions, jnp.int32), key

    @jax.jit
    def play(env_keys, action_key):
        tally = play_first_episodes(env, env_keys, policy, action_key, max_steps)
        return tally.returns, tally.lengths, tally.done, tally.success, tally.steps

    start = time.perf_counter()
    returns, lengths, done, success, steps = jax.device_get(
        play(reset_keys(seed, episodes), jax.random.PRNGKey(seed))
    )
    seconds = time.perf_counter() - start
    returns, lengths, success = returns[done], lengths[done], success[done]
    return {
        "task": task,
        "episodes": int(done.sum()),
        "episode_return": float(returns.mean()),
        "return_std": float(returns.std()),
        "return_sem": float(returns.std() / math.sqrt(len(returns))),
        "success": float(success.mean()) if env.has_success else None,
        "episode_length": float(lengths.mean()),
        "env_steps": int(steps) * episodes,
        "steps_per_s": int(steps) * episodes / seconds,
        "seed": seed,
    }


def main(argv: list[str] | None = None) -> None:
    """Measure each task named on the command line; log and optionally save JSON lines."""
    parser = Parser(prog="python -m gtrxl_jax.suite.random_policy",
                    description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("--episodes", type=positive_int, default=100)
    parser.add_argument("--num-envs", type=positive_int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--jax", action="store_true", help="JAX tasks (make_jax_env): one environment per episode"
    )
    parser.add_argument("--out", help="append one JSON line per task to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for task in args.tasks:
        try:
            if args.jax:
                result = measure_random_jax(task, args.episodes, args.seed)
            else:
                result = measure_random(task, args.episodes, args.num_envs, args.seed)
        except (ValueError, ImportError) as error:  # an unknown task, a missing extra
            parser.error(str(error))
        logger.info(json.dumps(result))
        if args.out:
            with open(args.out, "a") as file:
                file.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
