"""One process of the two-process tests: trains a few updates, saves its final parameters.

    python -m tests.train.distributed_worker PORT PROCESS_ID LOG_DIR OUT.npz [key=value ...]
"""

import sys

import jax
import numpy as np

from gtrxl_jax.train.loop import train
from tests.train.helpers import tiny_config


def main(port: str, process_id: str, log_dir: str, out: str, *overrides: str) -> None:
    config = tiny_config(
        log_dir,
        "env.num_envs=2",  # 2 rows per process, one per local device
        "learner.batch_size=4",
        "learner.total_env_steps=96",  # 3 updates of 4 x 8 steps
        "run.eval_episodes=0",
        f"distributed.coordinator_address=127.0.0.1:{port}",
        "distributed.num_processes=2",
        f"distributed.process_id={process_id}",
        *overrides,
    )
    result = train(config)
    leaves = jax.tree.leaves(result.params)
    np.savez(out, update=result.update, devices=jax.device_count(),
             interrupted=result.interrupted,
             **{f"leaf{i}": leaf for i, leaf in enumerate(leaves)})


if __name__ == "__main__":
    main(*sys.argv[1:])
