"""A relu MLP's forward and backward through `dense_matmul` against JAX's own matmul gradient.

`precision.dense_matmul` computes a kernel's gradient x^T g with the narrower of x and g on
the left on the CPU (XLA:CPU's fast matmul copies its left operand transposed); JAX's own
transpose rule always puts x there, so the MLP's [B, T, d_ff] hidden activations are copied
transposed on every backward pass. This times the block's MLP (B 32, T 32, d_model 256,
d_ff 1024: the reference core's), forward and backward, both ways in one process,
alternating, and prints one JSON line with each way's seconds and whether its compiled
backward holds the transposed [d_ff, B, T] copy:

    python experiments/bench/kernel_grad_orientation.py --calls 100
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp

from gtrxl_jax.nn.precision import dense_matmul


def jax_matmul(x: jax.Array, kernel: jax.Array, num_contracted: int) -> jax.Array:
    """Inputs x [..., K] times kernel [K, N], with JAX's own gradient."""
    return jnp.tensordot(x, kernel, num_contracted)


def mlp_loss(params, x, matmul) -> jax.Array:
    """sum(tanh(relu(x W_in + b) W_out + x)) for x [B, T, D]."""
    w_in, b_in, w_out = params
    hidden = jax.nn.relu(matmul(x, w_in, 1) + b_in)
    return jnp.sum(jnp.tanh(matmul(hidden, w_out, 1) + x))


def main():
    """Times both ways, alternating, and prints one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=100, help="timed calls of each way")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--unroll", type=int, default=32)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--d-ff", type=int, default=1024)
    args = parser.parse_args()
    B, T, D, F = args.batch, args.unroll, args.d_model, args.d_ff
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (B, T, D))
    params = (jax.random.normal(keys[1], (D, F)) / D**0.5, jnp.zeros(F),
              jax.random.normal(keys[2], (F, D)) / F**0.5)
    ways = {"dense_matmul": dense_matmul, "jax_gradient": jax_matmul}
    steps, transposed_copy = {}, {}
    for name, matmul in ways.items():
        step = jax.jit(jax.grad(lambda p, x, matmul=matmul: mlp_loss(p, x, matmul)))
        hlo = step.lower(params, x).compile().as_text()
        transposed_copy[name] = f"f32[{F},{B},{T}]" in hlo
        jax.block_until_ready(step(params, x))
        steps[name] = step
    seconds = {name: [] for name in ways}
    for _ in range(args.calls):
        for name, step in steps.items():
            start = time.perf_counter()
            jax.block_until_ready(step(params, x))
            seconds[name].append(time.perf_counter() - start)
    print(json.dumps({
        "backend": jax.default_backend(), "B": B, "T": T, "d_model": D, "d_ff": F,
        **{f"{name}_median_s": statistics.median(s) for name, s in seconds.items()},
        **{f"{name}_min_s": min(s) for name, s in seconds.items()},
        **{f"{name}_transposed_hidden_copy": copy for name, copy in transposed_copy.items()},
    }))


if __name__ == "__main__":
    main()
