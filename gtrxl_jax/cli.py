"""Command-line entry points of gtrxl_jax."""

import time

import jax
import jax.numpy as jnp

from gtrxl_jax.argtypes import Parser, positive_int
from gtrxl_jax.nn import GTrXL, GTrXLConfig, init_memory


def demo_main(argv: list[str] | None = None) -> None:
    """Builds a GTrXL, runs an unroll and the same steps one by one, and prints what it computed."""
    parser = Parser(prog="gtrxl-demo", description=demo_main.__doc__)
    parser.add_argument("--unroll", type=positive_int, default=32)
    parser.add_argument("--batch", type=positive_int, default=8)
    args = parser.parse_args(argv)
    config = GTrXLConfig(num_layers=4, d_model=128, num_heads=4, memory_len=16)
    T, B = args.unroll, args.batch
    core = GTrXL(config)
    inputs = jax.random.normal(jax.random.PRNGKey(0), (T, B, config.d_model))
    first = jnp.zeros((T, B), bool).at[0].set(True)
    memory = init_memory(config, B)
    params = core.init(jax.random.PRNGKey(1), inputs, first, memory)
    n_params = sum(x.size for x in jax.tree.leaves(params))
    print(f"GTrXL {config}\nparameters: {n_params:,}")
    unroll = jax.jit(core.apply)
    start = time.perf_counter()
    outputs, final = jax.block_until_ready(unroll(params, inputs, first, memory))
    seconds = time.perf_counter() - start
    valid_slots = int(final.valid[0].sum())
    print(
        f"unroll [T={T}, B={B}] -> outputs {outputs.shape} in {seconds:.2f}s (with compile); "
        f"memory states {final.states.shape}, valid slots {valid_slots}"
    )
    step = jax.jit(core.apply)
    acting = init_memory(config, B, cache=True)
    steps = []
    for t in range(T):
        out, acting = step(params, inputs[t : t + 1], first[t : t + 1], acting)
        steps.append(out)
    diff = float(jnp.abs(jnp.concatenate(steps) - outputs).max())
    print(f"{T} cached acting steps vs one unroll: max |difference| = {diff:.2e}")
