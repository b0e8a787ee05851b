"""Measure a uniformly random policy's score on tasks: the "random" end of normalised scores.

    python -m gtrxl_jax.suite.random_policy MiniGrid-MemoryS7-v0 MazeMemory-v0 \
        --episodes 200 --num-envs 8 --out random_scores.jsonl

Every environment contributes the same number of episodes (its first ones), so short
episodes are not over-represented. Evaluation settings (`training=False`): unclipped
Atari rewards, whole games.
"""

import argparse
import json
import logging
import math
import time

import numpy as np

from gtrxl_jax.envs import make_env

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


def main(argv: list[str] | None = None) -> None:
    """Measure each task named on the command line; log and optionally save JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+")
    parser.add_argument("--episodes", type=int, default=100)
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", help="append one JSON line per task to this file")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for task in args.tasks:
        result = measure_random(task, args.episodes, args.num_envs, args.seed)
        logger.info(json.dumps(result))
        if args.out:
            with open(args.out, "a") as file:
                file.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
