"""The sharded learner (jit over shard_map) against the pmap it replaced, in one run.

The same pure update (`Learning.update` with its pmean over DATA_AXIS), the same state and
the same batch, placed two ways on the same devices: `placement.Learner` (the package's
learner: jit over a shard_map on a mesh) and `jax.pmap` with the batch split on a leading
device axis (how the learner was placed before). Each is timed as a learner runs it (the
state donated and fed back, medians of --repeats calls after --warmup) on random batches of
the main job's shapes (experiments/configs/tmaze.py), alternating the two to share the
machine's noise. Prints one JSON line per placement and their ratio. Run with several
devices, e.g. two forced CPU devices:

    XLA_FLAGS=--xla_force_host_platform_device_count=2 python experiments/bench/shard_map_vs_pmap.py
"""

import argparse
import json
import statistics
import time

import jax
import numpy as np

from gtrxl_jax.bench.learner import random_trajectory
from gtrxl_jax.config import load_config
from gtrxl_jax.envs import make_env
from gtrxl_jax.train import builder
from gtrxl_jax.train.layout import plan_layout
from gtrxl_jax.train.placement import DATA_AXIS, Learner
from gtrxl_jax.train.types import batch_major, rebuild, time_major


def split_for_pmap(batch, num_devices: int):
    """Each device's rows on a leading axis, as pmap takes them.

    [T+1, B] leaves -> [D, T+1, B/D], [B] leaves -> [D, B/D]: the rows `batch_specs` gives
    each device.
    """
    def split(axis):
        return lambda x: np.stack(np.split(np.asarray(x), num_devices, axis=axis))
    return rebuild(jax.tree.map(split(1), time_major(batch)),
                   jax.tree.map(split(0), batch_major(batch)))


def main() -> None:
    """Time both placements and print the records."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--batch", type=int, default=None, help="B (default: the config's)")
    args = parser.parse_args()

    config = load_config("experiments/configs/tmaze.py", [])
    devices = jax.local_devices()
    agent = builder.make_agent(config, make_env("TMaze-L16", 1).spec, 1)
    learning = builder.make_learning(config, agent, plan_layout(config))
    T = config.learner.trajectory_len
    B = args.batch or config.learner.batch_size
    batch = random_trajectory(agent, T, B)

    sharded = Learner(learning, devices, trajectory_len=T)
    host_state = sharded.init_state(jax.random.PRNGKey(0))
    states = {"shard_map": sharded.replicate(host_state),
              "pmap": jax.tree.map(lambda x: np.stack([x] * len(devices)), host_state)}
    pmapped = jax.pmap(lambda s, b: learning.update(s, b, DATA_AXIS), axis_name=DATA_AXIS,
                       devices=devices, donate_argnums=0)
    per_device = split_for_pmap(batch, len(devices))
    steps = {"shard_map": lambda state: sharded.update(state, batch),
             "pmap": lambda state: pmapped(state, per_device)}

    times: dict[str, list[float]] = {name: [] for name in steps}
    for call in range(args.warmup + args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            states[name], _ = jax.block_until_ready(step(states[name]))
            if call >= args.warmup:
                times[name].append(time.perf_counter() - start)
    # the same updates from the same state: the parameters must agree to round-off
    params = {"shard_map": jax.device_get(jax.tree.map(lambda x: x.addressable_data(0),
                                                       states["shard_map"].params)),
              "pmap": jax.device_get(jax.tree.map(lambda x: x[0], states["pmap"].params))}
    difference = max(float(np.abs(a - b).max()) for a, b in zip(
        jax.tree.leaves(params["shard_map"]), jax.tree.leaves(params["pmap"]), strict=True))
    medians = {name: statistics.median(values) for name, values in times.items()}
    for name, median in medians.items():
        print(json.dumps({"placement": name, "devices": len(devices),
                          "platform": devices[0].platform, "unroll": T, "batch": B,
                          "median_s": median, "min_s": min(times[name]),
                          "max_s": max(times[name]), "repeats": args.repeats,
                          "env_steps_per_s": T * B / median}))
    print(json.dumps({"shard_map_over_pmap_time": medians["shard_map"] / medians["pmap"],
                      "updates": args.warmup + args.repeats,
                      "max_parameter_difference": difference}))


if __name__ == "__main__":
    main()
