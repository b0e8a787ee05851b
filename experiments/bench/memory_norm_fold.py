"""The memory's layer norm folded into its key/value projection, against normalising first.

`TransformerBlock.memory_keys_values` standardises a pre-LN block's memory and folds the
norm's scale and bias into the key/value projection (the memory is never differentiated,
so the backward pass needs no gradient of the normalised memory). This times the core's
learner forward and backward (the GTrXL core alone, B 64, T 33, d_model 64, 2 layers, as
the memory suite's card games) both ways in one process, alternating, and prints one JSON
line per memory length:

    python experiments/bench/memory_norm_fold.py --memory-lens 32,128,512
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

import gtrxl_jax as gx
from gtrxl_jax.nn.gtrxl import TransformerBlock

FOLDED = TransformerBlock.memory_keys_values


def normalise_first(block: TransformerBlock, states: jax.Array):
    """The memory's keys and values as a plain pre-LN block computes them."""
    return block.attention.keys_values(block.norm_attention(states))


def learner_step(memory_len: int, memory_keys_values, batch: int = 64, steps: int = 33):
    """(jitted loss-and-gradient of the core, its arguments) with the given memory path."""
    cfg = gx.GTrXLConfig(num_layers=2, d_model=64, num_heads=4, memory_len=memory_len)
    core = gx.GTrXL(cfg)
    key = jax.random.PRNGKey(0)
    inputs = jax.random.normal(key, (steps, batch, cfg.d_model))
    first = jnp.zeros((steps, batch), bool)
    memory = gx.init_memory(cfg, batch)
    memory = memory.replace(states=jax.random.normal(key, memory.states.shape),
                            valid=jnp.ones_like(memory.valid))
    params = core.init(key, inputs, first, memory)

    def loss(params):
        TransformerBlock.memory_keys_values = memory_keys_values  # read while tracing
        out, _ = core.apply(params, inputs, first, memory)
        return jnp.sum(out**2)

    step = jax.jit(jax.value_and_grad(loss))
    jax.block_until_ready(step(params))  # compile
    TransformerBlock.memory_keys_values = FOLDED
    return step, params


def median_ms(step, params, repeats: int) -> float:
    """Median seconds of `repeats` calls, in milliseconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        jax.block_until_ready(step(params))
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main() -> None:
    """Times both paths per memory length, alternating rounds, and prints JSON lines."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--memory-lens", default="32,128,512")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for memory_len in map(int, args.memory_lens.split(",")):
        paths = {"normalise_first": learner_step(memory_len, normalise_first),
                 "folded": learner_step(memory_len, FOLDED)}
        rounds = {name: [] for name in paths}
        for _ in range(args.rounds):
            for name, (step, params) in paths.items():
                rounds[name].append(median_ms(step, params, args.repeats))
        medians = {name: statistics.median(ms) for name, ms in rounds.items()}
        print(json.dumps({
            "memory_len": memory_len,
            **{f"{name}_ms": round(ms, 1) for name, ms in medians.items()},
            "folded_speedup": round(medians["normalise_first"] / medians["folded"], 3),
            "device": jax.devices()[0].device_kind,
        }), flush=True)


if __name__ == "__main__":
    main()
