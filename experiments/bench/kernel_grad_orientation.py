"""Which operand of a Dense kernel's gradient goes on the left: x always, or the narrower.

`precision.dense_matmul` computes a kernel's gradient x^T g with the narrower of x and g on
the left on the CPU in float32 (`precision._output_grad_on_the_left`; XLA:CPU's fast matmul
copies its left operand transposed); before, x was always there, so the block MLP's
[B, T, d_ff] hidden activations were copied transposed on every backward pass. This
compiles a step both ways in one process (the old way by patching that choice to "never"
while it compiles), times them alternating, and
prints one JSON line with each way's median and minimum seconds and, for the MLP, whether
the compiled backward holds the transposed [d_ff, B, T] copy:

    python experiments/bench/kernel_grad_orientation.py --step mlp --calls 100
    python experiments/bench/kernel_grad_orientation.py --step learn --calls 20 [--dtype bfloat16]

mlp: the reference core's block MLP alone (B 32, T 32, 256 -> 1,024 -> 256), forward and
backward; learn: the reference core's forward and backward (`gtrxl-bench`'s learn).
"""

import argparse
import json
import statistics
import time
from unittest import mock

import jax
import jax.numpy as jnp

from gtrxl_jax.bench import WORKLOADS
from gtrxl_jax.bench.core import make_problem
from gtrxl_jax.nn import precision
from gtrxl_jax.nn.precision import dense_matmul


def mlp_step(batch: int, unroll: int, d_model: int, d_ff: int):
    """The block MLP's gradient function and its arguments."""
    keys = jax.random.split(jax.random.PRNGKey(0), 3)
    x = jax.random.normal(keys[0], (batch, unroll, d_model))
    params = (jax.random.normal(keys[1], (d_model, d_ff)) / d_model**0.5, jnp.zeros(d_ff),
              jax.random.normal(keys[2], (d_ff, d_model)) / d_ff**0.5)

    def loss(params):
        w_in, b_in, w_out = params
        hidden = jax.nn.relu(dense_matmul(x, w_in, 1) + b_in)
        return jnp.sum(jnp.tanh(dense_matmul(hidden, w_out, 1) + x))

    return jax.grad(loss), (params,)


def learn_step(dtype: str):
    """The reference core's gradient function (mean squared output) and its arguments."""
    workload = WORKLOADS["reference"].with_dtype(dtype)
    problem = make_problem(workload.core, workload.unroll, workload.batch)

    def loss(params):
        outputs, _ = problem.core.apply(params, problem.inputs, problem.first, problem.memory)
        return jnp.mean(jnp.square(outputs))

    return jax.grad(loss), (problem.params,)


def main():
    """Compiles the step both ways, times them alternating and prints one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--step", choices=("mlp", "learn"), default="mlp")
    parser.add_argument("--calls", type=int, default=100, help="timed calls of each way")
    parser.add_argument("--dtype", choices=("float32", "bfloat16"), default="float32",
                        help="the learn's compute dtype")
    args = parser.parse_args()
    B, T, D, F = 32, 32, 256, 1024
    step, step_args = mlp_step(B, T, D, F) if args.step == "mlp" else learn_step(args.dtype)
    never = lambda x, output_grad: False  # noqa: E731
    ways = {"x_left": never, "narrower_left": precision._output_grad_on_the_left}
    compiled = {}
    for name, choice in ways.items():
        with mock.patch.object(precision, "_output_grad_on_the_left", choice):
            # A new function each time: jit would otherwise reuse the first way's trace.
            fresh = lambda *a: step(*a)  # noqa: E731
            compiled[name] = jax.jit(fresh).lower(*step_args).compile()
        jax.block_until_ready(compiled[name](*step_args))
    seconds = {name: [] for name in ways}
    for _ in range(args.calls):
        for name, call in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(call(*step_args))
            seconds[name].append(time.perf_counter() - start)
    print(json.dumps({
        "step": args.step, "dtype": args.dtype if args.step == "learn" else "float32",
        "backend": jax.default_backend(), "calls": args.calls,
        **{f"{name}_median_s": statistics.median(s) for name, s in seconds.items()},
        **{f"{name}_min_s": min(s) for name, s in seconds.items()},
        **({f"{name}_transposed_hidden_copy": f"f32[{F},{B},{T}]" in call.as_text()
            for name, call in compiled.items()} if args.step == "mlp" else {}),
    }))


if __name__ == "__main__":
    main()
