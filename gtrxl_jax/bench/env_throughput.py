"""Environment throughput: steps per second of a task under uniform random actions.

    python -m gtrxl_jax.bench.env_throughput TMaze-L10 Pong-v5 --num-envs 8 --steps 2000
    python -m gtrxl_jax.bench.env_throughput MiniGrid-MemoryS9 --jax --num-envs 1024

Host tasks (`make_env`) step synchronously from Python; JAX tasks (`--jax`, `make_jax_env`)
step N environments in one jitted `lax.scan`, the actions drawn inside it. Neither the reset
nor the compile is timed.
"""

import logging
import time

import jax
import jax.numpy as jnp
import numpy as np

from gtrxl_jax.argtypes import Parser, positive_int
from gtrxl_jax.envs import VectorEnv, make_env, make_jax_env
from gtrxl_jax.envs.functional import JaxEnv, batch_reset, batch_step, reset_keys

logger = logging.getLogger(__name__)


def steps_per_second(env: VectorEnv, num_steps: int, seed: int = 0) -> float:
    """Measure synchronous stepping of a host environment under uniform random actions.

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


def jax_steps_per_second(env: JaxEnv, num_envs: int, num_steps: int, seed: int = 0) -> float:
    """Measure a jitted `lax.scan` of `batch_step` under uniform random actions.

    Args:
      env: the environment.
      num_envs: N, environments stepped together (vmapped).
      num_steps: T, batched steps in the scan.
      seed: seed of the environments and the actions.

    Returns:
      Environment steps per second: T * N / seconds of the second run (the first compiles).
    """
    action_key = jax.random.PRNGKey(seed)

    def step(states, t):
        actions = jax.random.randint(
            jax.random.fold_in(action_key, t), (num_envs,), 0, env.num_actions
        )
        states, timestep = batch_step(env, states, actions)
        return states, timestep.reward.sum()

    @jax.jit
    def run(keys):
        states, _ = batch_reset(env, keys)
        return jax.lax.scan(step, states, jnp.arange(num_steps))

    keys = reset_keys(seed, num_envs)
    jax.block_until_ready(run(keys))
    start = time.perf_counter()
    jax.block_until_ready(run(keys))
    return num_steps * num_envs / (time.perf_counter() - start)


def main(argv: list[str] | None = None) -> None:
    """Log the throughput of each task named on the command line."""
    parser = Parser(prog="python -m gtrxl_jax.bench.env_throughput",
                    description=__doc__.splitlines()[0])
    parser.add_argument("tasks", nargs="+", help="task names, e.g. TMaze-L10 Pong-v5")
    parser.add_argument("--jax", action="store_true",
                        help="JAX tasks, stepped in one jitted scan (make_jax_env)")
    parser.add_argument("--num-envs", type=positive_int, default=8)
    parser.add_argument("--steps", type=positive_int, default=2000, help="batched steps to time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", force=True)
    logging.getLogger("jax").setLevel(logging.WARNING)  # its platform probing
    for task in args.tasks:
        if args.jax:
            rate = jax_steps_per_second(make_jax_env(task), args.num_envs, args.steps)
        else:
            with make_env(task, num_envs=args.num_envs) as env:
                rate = steps_per_second(env, args.steps)
        logger.info("%-24s %5d envs  %10.0f steps/s", task, args.num_envs, rate)


if __name__ == "__main__":
    main()
