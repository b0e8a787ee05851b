"""Environment throughput: how many steps per second a task runs under random actions.

python -m gtrxl_jax.envs.throughput TMaze-L10 Pong-v5 --num-envs 8 --steps 2000
"""

import argparse
import logging
import time

import numpy as np

from gtrxl_jax.envs import make_env
from gtrxl_jax.envs.base import VectorEnv

logger = logging.getLogger(__name__)


def steps_per_second(env: VectorEnv, num_steps: int, seed: int = 0) -> float:
    """Measure synchronous stepping under uniform random actions.

    Args:
      env: a synchronous environment (batch_size == num_envs); it is reset first.
      num_steps: number of batched steps T to time.
      seed: seed of the random actions.

    Returns:
      Environment steps per second: T * N / elapsed seconds (the reset is not timed).
    """
    spec = env.spec
    actions = np.random.default_rng(seed).integers(
        0, spec.num_actions, size=(num_steps, spec.num_envs), dtype=np.int32
    )
    env.reset()
    start = time.perf_counter()
    for step_actions in actions:
        env.step(step_actions)
    return num_steps * spec.num_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Log the throughput of each task named on the command line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+", help="task names, e.g. TMaze-L10 Pong-v5")
    parser.add_argument("--num-envs", type=int, default=8)
    parser.add_argument("--steps", type=int, default=2000, help="batched steps to time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for task in args.tasks:
        with make_env(task, num_envs=args.num_envs) as env:
            rate = steps_per_second(env, args.steps)
        logger.info("%-24s %5d envs  %10.0f steps/s", task, args.num_envs, rate)


if __name__ == "__main__":
    main()
