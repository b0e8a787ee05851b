"""Seconds per pixel learner update for each way of taking the IMPALA torso's gradients.

The learner's whole update (`Learner.update`: torso, core, V-trace loss, checks, optimiser)
on a random Pong-shaped batch (`gtrxl_jax.bench.learner.random_trajectory`: [T + 1, B]
uint8 frames 4x84x84, episode starts included),
with the convolutions' kernel gradients as XLA's convolution or as patches matmuls and the
max-pools' gradients as XLA's select-and-scatter or elementwise masks. One JSON line per
method, after a machine record, so the methods compare within one run.

    python experiments/bench/pixel_update.py --out experiments/bench/pixel_update.jsonl
    python experiments/bench/pixel_update.py agent.core=gtrxl learner.batch_size=32
"""

import argparse
import itertools
import json

import jax

from gtrxl_jax.bench.learner import random_trajectory, time_updates
from gtrxl_jax.bench.machine import machine_info
from gtrxl_jax.config import TrainConfig, load_config
from gtrxl_jax.envs import make_env
from gtrxl_jax.train import builder
from gtrxl_jax.train.layout import plan_layout
from gtrxl_jax.train.placement import Learner
from gtrxl_jax.train.types import Trajectory

# The shapes of the pixel-learner comparison: 16 environments, trajectories of 20, batch 16.
DEFAULTS = ("env.task=Pong-v5", "agent.core=feedforward", "env.num_envs=16",
            "learner.trajectory_len=20", "learner.batch_size=16")


def pixel_learner(overrides: list[str]) -> tuple[TrainConfig, Learner, Trajectory]:
    """The config (DEFAULTS, then `overrides`), its one-device learner and a random batch."""
    config = load_config("experiments/configs/tmaze.py", [*DEFAULTS, *overrides])
    spec = make_env(config.env.task, 1).spec
    agent = builder.make_agent(config, spec, num_tasks=1)
    learner = Learner(builder.make_learning(config, agent, plan_layout(config)),
                      jax.local_devices()[:1], trajectory_len=config.learner.trajectory_len)
    batch = random_trajectory(agent, config.learner.trajectory_len, config.learner.batch_size)
    return config, learner, batch


def measure(overrides: list[str], repeats: int, warmup: int) -> dict:
    """Compile and time the learner update of the config the overrides make."""
    config, learner, batch = pixel_learner(overrides)
    T, B = config.learner.trajectory_len, config.learner.batch_size
    first_call_s, timing = time_updates(learner, batch, repeats, warmup)
    return {"measurement": "pixel_update", "kind": "pixel_update", "task": config.env.task,
            "core": config.agent.core, "unroll": T, "batch": B, "first_call_s": first_call_s,
            **timing.fields(),
            "learner_s_per_1k_frames": 1000 * timing.median_s / (T * B)}


def main() -> None:
    """Time every gradient method; print and (with --out) append one JSON line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--out")
    parser.add_argument("overrides", nargs="*", help="further TrainConfig overrides")
    args = parser.parse_args()
    records = [{"kind": "machine", **machine_info()}]
    print(json.dumps(records[0]), flush=True)
    for kernel, pool in itertools.product(("xla", "matmul"), ("xla", "elementwise")):
        methods = [f"agent.torso_options.matmul_kernel_grad={kernel == 'matmul'}",
                   f"agent.torso_options.elementwise_pool_grad={pool == 'elementwise'}"]
        record = {**measure([*args.overrides, *methods], args.repeats, args.warmup),
                  "kernel_grad": kernel, "pool_grad": pool}
        records.append(record)
        print(json.dumps(record), flush=True)
    if args.out:
        with open(args.out, "a") as f:
            f.writelines(json.dumps(r) + "\n" for r in records)


if __name__ == "__main__":
    main()
